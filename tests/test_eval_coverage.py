"""Mode coverage metrics: the paper's count and the VEEGAN/PacGAN strict metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ali.data.mixture import MixtureData
from ali.eval.coverage import mode_histogram, paper_modes, reverse_kl_to_uniform, strict_metrics

SPEC = MixtureData()
CENTRES = SPEC.centres()


@pytest.mark.parametrize("k", [1, 2, 7, 13, 24, 25])
def test_samples_at_k_centres_cover_exactly_k_modes(k):
    """Samples exactly on k distinct centres: k modes by both definitions, all high quality."""
    rng = np.random.default_rng(k)
    chosen = rng.choice(25, size=k, replace=False)
    x = np.repeat(CENTRES[chosen], 3, axis=0)  # several samples per chosen mode
    assert paper_modes(SPEC, x) == k
    m = strict_metrics(SPEC, x)
    assert m["strict_modes"] == k
    assert m["hq_pct"] == 100.0
    hist = mode_histogram(SPEC, x)
    assert set(np.flatnonzero(hist)) == set(chosen.tolist())
    assert m["reverse_kl"] == pytest.approx(math.log(25 / k), abs=1e-12)


def test_float32_tensor_samples_work():
    """Generator output arrives as a float32 tensor; the metrics must accept it."""
    x = torch.from_numpy(CENTRES.astype(np.float32))
    assert paper_modes(SPEC, x) == 25
    assert strict_metrics(SPEC, x)["strict_modes"] == 25


def test_points_between_modes_are_never_high_quality():
    """Samples 0.5 off every centre (dist 0.71 > 3 std): the paper counts them, strict metrics do not."""
    x = CENTRES + np.array([0.5, 0.5])
    assert paper_modes(SPEC, x) == 25  # nearest assignment still hits every mode
    m = strict_metrics(SPEC, x)
    assert m["strict_modes"] == 0
    assert m["hq_pct"] == 0.0
    assert math.isnan(m["reverse_kl"])
    assert mode_histogram(SPEC, x, hq_stds=3.0).sum() == 0


def test_midpoints_and_far_points():
    """Grid midpoints like (1, 1) and far points like (10, 10) are low quality but still assigned."""
    mids = np.array([[a, b] for a in (-3.0, -1.0, 1.0, 3.0) for b in (-3.0, -1.0, 1.0, 3.0)])
    far = np.array([[10.0, 10.0], [10.0, 10.0], [-50.0, 0.0]])
    x = np.concatenate([mids, far])
    m = strict_metrics(SPEC, x)
    assert (m["strict_modes"], m["hq_pct"]) == (0, 0.0)
    assert math.isnan(m["reverse_kl"])
    assert paper_modes(SPEC, far) == 2  # (4, 4) and (-4, 0)
    assert paper_modes(SPEC, x) >= 2


def test_mixed_quality_percentage():
    """hq_pct is the percentage of samples within 3 std: 3 good of 4 -> 75 %."""
    x = np.array([CENTRES[0], CENTRES[1], CENTRES[2], CENTRES[3] + [0.3, 0.0]])
    m = strict_metrics(SPEC, x)
    assert m["hq_pct"] == pytest.approx(75.0)
    assert m["strict_modes"] == 3
    assert paper_modes(SPEC, x) == 4


@pytest.mark.parametrize("as_tensor", [False, True])
def test_three_std_boundary(as_tensor):
    """0.149 from a centre is high quality; 0.151 is not (threshold 3 * 0.05 = 0.15)."""
    inside = CENTRES[12] + np.array([0.149, 0.0])
    outside = CENTRES[12] + np.array([0.0, -0.151])
    diag_in = CENTRES[5] + np.array([0.105, 0.105])   # norm 0.1485
    diag_out = CENTRES[5] + np.array([0.107, 0.107])  # norm 0.1513
    for pts, expected in ([inside, diag_in], 100.0), ([outside, diag_out], 0.0):
        x = np.stack(pts)
        x = torch.from_numpy(x.astype(np.float32)) if as_tensor else x
        assert strict_metrics(SPEC, x)["hq_pct"] == expected


def test_hq_stds_parameter_is_used():
    """A wider threshold admits the point that 3 std rejects."""
    x = np.array([CENTRES[0] + [0.2, 0.0]])  # 4 std away
    assert strict_metrics(SPEC, x, hq_stds=3.0)["hq_pct"] == 0.0
    assert strict_metrics(SPEC, x, hq_stds=5.0)["hq_pct"] == 100.0


def test_reverse_kl_uniform_is_zero():
    """A uniform histogram has zero KL to uniform."""
    assert reverse_kl_to_uniform(np.full(25, 7)) == pytest.approx(0.0, abs=1e-12)


def test_reverse_kl_single_mode_is_log25():
    """All mass on one mode: KL(p || U) = log 25."""
    h = np.zeros(25, dtype=int)
    h[3] = 40
    assert reverse_kl_to_uniform(h) == pytest.approx(math.log(25))


def test_reverse_kl_two_mode_split_by_hand():
    """3:1 split over two modes: 0.75 log(0.75*25) + 0.25 log(0.25*25)."""
    h = np.zeros(25, dtype=int)
    h[0], h[9] = 3, 1
    expected = 0.75 * math.log(0.75 * 25) + 0.25 * math.log(0.25 * 25)
    assert reverse_kl_to_uniform(h) == pytest.approx(expected, rel=1e-12)
    x = np.array([CENTRES[0]] * 3 + [CENTRES[9]])
    assert strict_metrics(SPEC, x)["reverse_kl"] == pytest.approx(expected, rel=1e-12)


def test_reverse_kl_empty_is_nan():
    """No high-quality sample: the KL is undefined (NaN), not 0."""
    assert math.isnan(reverse_kl_to_uniform(np.zeros(25, dtype=int)))


def test_metrics_do_not_depend_on_sample_order():
    """Permuting the samples changes nothing."""
    rng = np.random.default_rng(3)
    x = CENTRES[rng.integers(0, 20, 500)] + 0.08 * rng.standard_normal((500, 2))
    perm = rng.permutation(len(x))
    assert paper_modes(SPEC, x) == paper_modes(SPEC, x[perm])
    a, b = strict_metrics(SPEC, x), strict_metrics(SPEC, x[perm])
    assert a["strict_modes"] == b["strict_modes"]
    assert a["hq_pct"] == pytest.approx(b["hq_pct"])
    assert a["reverse_kl"] == pytest.approx(b["reverse_kl"])
    np.testing.assert_array_equal(mode_histogram(SPEC, x), mode_histogram(SPEC, x[perm]))
    assert 0.0 < a["hq_pct"] < 100.0 and a["strict_modes"] <= 20
