"""Training curves at any scale: the default history cadence gives every run at least 10 rows, and
logging more often changes no trained weight (it averages losses and draws no random numbers)."""

from __future__ import annotations

import pytest
import torch
from test_engine import differing, group_run, model_file
from tiny_images import assert_same_training_state, register_tiny_arch, run_loop, tiny_data, tiny_spec

from ali.experiments.base import MIN_HISTORY_ROWS, RunContext, experiment, history_interval

torch.set_num_threads(1)


@pytest.mark.parametrize("configured, steps, expected", [
    (1000, 1200, 120), (1000, 10_000, 1000), (1000, 2_000_000, 1000), (100, 59, 5), (100, 7, 1), (100, None, 100),
])
def test_history_interval(configured, steps, expected):
    assert history_interval(configured, steps) == expected
    if steps:
        assert steps // history_interval(configured, steps) >= min(MIN_HISTORY_ROWS, steps)


def test_the_context_shortens_the_default_cadence_and_keeps_a_given_one():
    mixture = experiment("mixture")   # logs every 1,000 steps by default
    assert RunContext().loop_options(mixture, 1200)["log_every"] == 120
    assert RunContext().loop_options(mixture, 500_000)["log_every"] == 1000
    assert RunContext(log_every=7).loop_options(mixture, 1200)["log_every"] == 7


def test_group_weights_do_not_depend_on_the_history_cadence(tmp_path):
    specs = differing("ali", 2, steps=24)
    often = group_run(specs, tmp_path / "often", log_every=1, eval_every=2)
    rarely = group_run(specs, tmp_path / "rarely", log_every=24, eval_every=24)
    for a, b in zip(often, rarely):
        assert a["steps_done"] == b["steps_done"] == 24
        for k, v in model_file(a).items():
            torch.testing.assert_close(v, model_file(b)[k], rtol=0, atol=0, msg=k)


def test_solo_weights_do_not_depend_on_the_history_cadence(tmp_path, monkeypatch):
    register_tiny_arch(monkeypatch)
    spec, data = tiny_spec("ali", steps=8), tiny_data()
    often, _ = run_loop(spec, tmp_path / "often", data, log_every=1)
    rarely, _ = run_loop(spec, tmp_path / "rarely", data, log_every=8)
    assert_same_training_state(often, rarely)
