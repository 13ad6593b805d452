"""The mixture summary's headline columns, checked by hand: the diverged-as-zero mode counts and the
verdicts beside the published numbers; and the path where every GAN of a protocol diverges.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from conftest import SMOKE as SMOKE_PRESET

from ali.config import load_config
from ali.experiments.base import RunContext, experiment, read_json
from ali.experiments.mixture import RUN_METRICS, choose_best
from ali.report.comparisons import published
from ali.report.tables import mixture_summary
from ali.report.verdicts import CONSISTENT, DIFFERS, SMOKE, Ours, verdict


def runs(protocol: str, kind: str, model: str, modes: list[float | None], preset: str = "paper") -> pd.DataFrame:
    """Hand-made tidy rows: one per run, None for a diverged run (no metrics)."""
    rows = []
    for i, m in enumerate(modes):
        row = {"preset": preset, "protocol": protocol, "protocol_kind": kind, "model": model, "run": i,
               "status": "diverged" if m is None else "ok", "diverged": m is None, "our_choices": "",
               "scale": preset, "config_hash": f"h{i}", "code_version": "v", "wall_time_s": 1.0}
        row.update({metric: np.nan for metric in RUN_METRICS})
        if m is not None:
            row.update(modes=m, strict_modes=m - 1, hq_pct=90.0, reverse_kl=0.1)
        rows.append(row)
    return pd.DataFrame(rows)


def test_a_diverged_run_counts_as_zero_modes_beside_the_mean_over_evaluated_runs():
    table = mixture_summary(runs("random", "random", "ali", [20, 10, None, None])).iloc[0]
    assert table["n_runs"] == 4 and table["n_diverged"] == 2 and table["n_evaluated"] == 2
    assert table["modes_mean"] == 15.0                                   # (20 + 10) / 2
    assert table["modes_mean_diverged_as_0"] == 7.5                      # (20 + 10 + 0 + 0) / 4
    assert table["modes_std_diverged_as_0"] == pytest.approx(np.std([20, 10, 0, 0], ddof=1))
    assert table["strict_modes_mean_diverged_as_0"] == (19 + 9) / 4


@pytest.mark.parametrize("modes, expected", [([13, 14, 12, 15, 13, 14, 12, 13, 14, 14], CONSISTENT),
                                             ([25] * 9 + [24], DIFFERS)])
def test_the_verdict_beside_the_papers_number_is_the_computed_test(modes, expected):
    table = mixture_summary(runs("random", "random", "ali", modes)).iloc[0]
    ours = Ours(float(np.mean(modes)), float(np.std(modes, ddof=1)), len(modes), "paper")
    assert table["paper_modes_verdict"] == verdict(ours, published("mixture.paper.ali.modes")) == expected
    assert "z-test" in table["verdict_test"]


def test_pacgan_numbers_and_verdicts_only_on_the_pacgan_protocol_and_smoke_says_so():
    frame = pd.concat([runs("pacgan", "pacgan", "gan", [17, 18, 16], preset="smoke"),
                       runs("fixed", "fixed", "gan", [17, 18, 16], preset="smoke")])
    table = mixture_summary(frame).set_index("protocol")
    assert table.loc["pacgan", "pacgan_strict_modes_verdict"] == SMOKE
    assert table.loc["pacgan", "pacgan_strict_modes_mean"] == published("mixture.pacgan.gan.strict_modes").value
    assert all(math.isnan(v) if isinstance(v, float) else v in ("", None)
               for c, v in table.loc["fixed"].items() if c.startswith(("pacgan_", "paper_")))


def test_when_every_gan_diverges_the_baselines_are_recorded_as_skipped(tmp_path):
    best = choose_best([{"model": "gan", "run_dir": f"g{i}", "status": "diverged"} for i in range(3)]
                       + [{"model": "ali", "run_dir": "a0", "status": "ok", "modes": 3, "strict_modes": 3,
                           "hq_pct": 50.0, "reverse_kl": 1.0}])
    assert best["gan"] is None and best["ali"] == "a0"
    (tmp_path / "best.json").write_text(json.dumps(best))
    mixture, cfg = experiment("mixture"), load_config(SMOKE_PRESET)
    spec = mixture.plan(cfg)["random/inverse/run0"]
    ctx = RunContext(device="cpu", progress=False, inputs={"best": [tmp_path / "best.json"]})
    record = mixture.train_run(spec, tmp_path / "inverse", ctx)
    assert record["status"] == "skipped" and "no GAN run" in record["reason"]
    assert read_json(tmp_path / "inverse" / "record.json")["status"] == "skipped"
    metrics = mixture.evaluate_run(tmp_path / "inverse", mixture.settings(cfg), ctx)
    assert metrics["status"] == "skipped"
