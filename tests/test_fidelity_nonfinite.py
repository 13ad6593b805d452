"""A non-finite generator sample lands in no mode (``ali.data.mixture.assign``, ``ali.eval.coverage``).

Before the fix, a NaN row's distances were all NaN, ``argmin`` returned 0, and the paper's count gave
component 0 (centre (-4, -4)) a sample it never received. Set-up by hand: 100 samples exactly on three
centres (components 6, 12 and 18: (-2, -2), (0, 0), (2, 2)), plus 10 rows with NaN or inf.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ali.data.mixture import NO_MODE, MixtureData, assign
from ali.eval.coverage import mode_histogram, nonfinite_pct, paper_modes, strict_metrics
from ali.eval.inference import inference_metrics

SPEC = MixtureData()
COMPONENTS = (6, 12, 18)  # (-2, -2), (0, 0), (2, 2): k = 5 * i + j on the grid (-4, -2, 0, 2, 4)


def samples() -> np.ndarray:
    """110 rows: 34 + 33 + 33 on three centres, then 10 non-finite rows (NaN, inf, -inf, mixed)."""
    centres = SPEC.centres()
    assert centres[6].tolist() == [-2.0, -2.0] and centres[18].tolist() == [2.0, 2.0]
    good = np.concatenate([np.repeat(centres[[k]], n, axis=0) for k, n in zip(COMPONENTS, (34, 33, 33))])
    bad = np.array([[np.nan, np.nan]] * 4 + [[np.inf, 0.0], [0.0, -np.inf], [np.nan, 1.0], [-4.0, np.nan],
                                             [np.inf, np.inf], [-np.inf, np.nan]])
    return np.concatenate([good, bad]).astype(np.float32)


def test_assign_puts_non_finite_rows_in_no_mode_at_infinite_distance():
    nearest, dist = assign(SPEC, samples())
    assert (nearest[:100] >= 0).all() and np.isfinite(dist[:100]).all()
    assert (nearest[100:] == NO_MODE).all() and np.isinf(dist[100:]).all()
    assert set(nearest[:100].tolist()) == set(COMPONENTS)


def test_paper_count_is_three_not_four():
    x = samples()
    assert paper_modes(SPEC, x[:100]) == 3
    assert paper_modes(SPEC, x) == 3  # component 0 gets nothing from the NaN rows
    hist = mode_histogram(SPEC, x)
    assert hist.sum() == 100 and hist[0] == 0
    assert [hist[k] for k in COMPONENTS] == [34, 33, 33]


def test_strict_metrics_count_non_finite_rows_as_not_high_quality():
    m = strict_metrics(SPEC, samples(), hq_stds=3.0)
    assert m["strict_modes"] == 3
    assert m["hq_pct"] == pytest.approx(100.0 * 100 / 110)  # 10 of 110 are not high quality
    # the 100 finite samples: 34/100, 33/100, 33/100 over 25 modes -> KL = sum p log(25 p)
    kl = sum(p * math.log(25 * p) for p in (0.34, 0.33, 0.33))
    assert m["reverse_kl"] == pytest.approx(kl)
    assert mode_histogram(SPEC, samples(), hq_stds=3.0).sum() == 100


def test_an_infinite_radius_still_excludes_non_finite_rows():
    assert mode_histogram(SPEC, samples(), hq_stds=math.inf).sum() == 100


def test_nonfinite_pct():
    assert nonfinite_pct(samples()) == pytest.approx(100.0 * 10 / 110)
    assert nonfinite_pct(torch.from_numpy(samples()[:100])) == 0.0
    assert nonfinite_pct(torch.full((4, 2), float("nan"))) == 100.0


def test_all_non_finite_gives_no_mode():
    x = np.full((50, 2), np.nan, dtype=np.float32)
    assert paper_modes(SPEC, x) == 0
    m = strict_metrics(SPEC, x)
    assert m["strict_modes"] == 0 and m["hq_pct"] == 0.0 and math.isnan(m["reverse_kl"])


class _NaNDecoder:
    """A model whose reconstructions are NaN for the first half of the inputs (the same data otherwise)."""

    def encode(self, x):
        return torch.zeros(len(x), 2)

    def decode(self, z):
        out = torch.from_numpy(np.repeat(SPEC.centres()[[12]], len(z), axis=0)).float()
        out[: len(z) // 2] = float("nan")
        return out


def test_reconstruction_metrics_do_not_count_non_finite_reconstructions():
    labels = np.full(20, 12)
    x = torch.zeros(20, 2)
    m = inference_metrics(SPEC, _NaNDecoder(), x, labels, mmd_samples=10)
    assert m["recon_same_mode_pct"] == 50.0  # the NaN half is in no mode, not in component 0 or 12
    assert m["recon_modes"] == 1
