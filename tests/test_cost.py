"""Cost before running (ali/cost.py): steps / rate per run and per target, the rates' sources, and the
SLURM limits the workflow takes from the same numbers."""

from __future__ import annotations

import json
import math

import pytest
from conftest import PAPER, SMOKE, TINY

from ali.cli import main
from ali.config import load_config
from ali.cost import (BUILTIN, SAFETY, UNKNOWN_MINUTES, Rate, all_rates, measured_rates, rate_for, run_costs,
                      runtime_minutes, target_runs, work)
from ali.experiments import mixture as mx

HAND = [Rate("mixture", "ali", "cpu", 100.0, "hand"), Rate("mixture", "gan", "cpu", 50.0, "hand"),
        Rate("mixture", "ali", "cuda", 400.0, "hand", group_size=1),
        Rate("mixture", "ali", "cuda", 1000.0, "hand", group_size=2)]


def test_a_tiny_plan_costs_what_its_steps_over_the_rates_give():
    cfg = load_config(SMOKE)  # random: 2 runs of 6 epochs x 200 steps = 1,200 steps each
    cpu = {c.key: c for c in run_costs(cfg, ["random/ali/run0", "random/gan/run1"], "cpu", HAND)}
    assert cpu["random/ali/run0"].work == 1200 and cpu["random/ali/run0"].group_size == 1
    assert cpu["random/ali/run0"].hours == pytest.approx(1200 / 100 / 3600)
    assert cpu["random/gan/run1"].hours == pytest.approx(1200 / 50 / 3600)
    # on a GPU the protocol's two ALI runs share one job: priced at the group of 2's run-steps/s
    (gpu,) = run_costs(cfg, ["random/ali/run1"], "cuda", HAND)
    assert gpu.group_size == 2 and gpu.rate.value == 1000.0
    assert gpu.hours == pytest.approx(1200 / 1000 / 3600)
    (vae,) = run_costs(cfg, ["random/vae/run0"], "cpu", HAND)
    assert vae.rate is None and math.isnan(vae.hours)  # no rate for it in HAND: priced as unknown


def test_rate_lookup_prefers_the_group_size_not_above_the_jobs_and_scales_image_batches():
    spec = {"experiment": "mixture", "model": "ali", "steps": 10}
    assert rate_for(spec, "cuda", 1, HAND).value == 400.0
    assert rate_for(spec, "cuda", 10, HAND).value == 1000.0  # the largest measured size <= 10
    image = Rate("images", "ali", "cuda", 20.0, "hand", arch="svhn", batch_size=100)
    spec = {"experiment": "images", "model": "ali", "arch": "svhn", "batch_size": 50, "precision": "bf16"}
    rate = rate_for(spec, "cuda", 1, [image])
    assert rate.value == 40.0 and "batch 50" in rate.source and "none known for bf16" in rate.source


def test_measured_rates_come_first_and_tiny_scale_ones_are_ignored(tmp_path):
    doc = {"device": "NVIDIA H200", "kind": "cuda", "date": "2026-12-04", "code_version": "x", "rates": [
        {"experiment": "mixture", "model": "ali", "value": 25_000.0, "scale": "paper", "group_size": 10},
        {"experiment": "mixture", "model": "ali", "value": 9.0, "scale": "tiny", "group_size": 10}]}
    (tmp_path / "nvidia-h200.json").write_text(json.dumps(doc))
    (found,) = measured_rates(tmp_path, "cuda")
    assert found.value == 25_000.0 and "nvidia-h200.json" in found.source and "NVIDIA H200" in found.source
    assert measured_rates(tmp_path, "cpu") == []
    spec = mx.plan(load_config(PAPER))["random/ali/run0"]
    assert rate_for(spec, "cuda", 10, all_rates("cuda", tmp_path)).value == 25_000.0
    assert rate_for(spec, "cuda", 10, BUILTIN).source.startswith("estimate")


def test_every_builtin_rate_says_where_it_came_from():
    for rate in BUILTIN:
        assert rate.value > 0 and math.isfinite(rate.value), rate
        assert rate.source.startswith(("measured: `python benchmarks/", "estimate")), rate
        if rate.source.startswith("measured"):
            assert rate.device == "cpu" and "estimate for any other CPU" in rate.source


def test_targets_map_to_the_runs_the_dag_trains_for_them():
    cfg = load_config(PAPER)
    targets = target_runs(cfg)
    assert targets["results/mixture.csv"] == list(mx.plan(cfg))
    table1 = targets["results/table1.csv"]
    # the SVM's source models train over the paper preset's three image seeds; raw pixels are probed once
    assert sorted(table1) == sorted([f"svhn/{m}/seed{s}" for m in ("ali", "vae", "gan") for s in range(3)]
                                    + [f"svm/svhn/{m}/seed{s}" for m in ("ali", "vae", "gan") for s in range(3)]
                                    + ["svm/svhn/raw/seed0"]
                                    + [f"svhn/{m}/labels1000/seed{s}" for m in ("ali_kplus1", "gan_fm") for s in range(3)])
    assert len(targets["results/table2.csv"]) == 24
    assert all(k.startswith("cifar10/") for k in targets["results/table2.csv"])


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_slurm_limits_cover_the_estimate_with_the_safety_factor(device):
    plan = mx.plan(load_config(PAPER))
    for key, spec in plan.items():
        rate = rate_for(spec, device, 1)
        assert runtime_minutes(spec, device) * 60 >= SAFETY * spec["steps"] / rate.value, key
    group = [plan[f"pacgan/ali/run{i}"] for i in range(10)]
    rate = rate_for(group[0], device, 10)
    assert runtime_minutes(group, device) * 60 >= SAFETY * 10 * 400_000 / rate.value
    assert runtime_minutes(plan["pacgan/ali/run0"], "cpu") * 60 >= 400_000 / 40  # issue 15's ~40 steps/s
    unknown = {"experiment": "images", "model": "ali", "arch": "celeba", "steps": 1}
    assert runtime_minutes(unknown, device) == UNKNOWN_MINUTES


def test_plan_cost_prints_each_run_the_totals_and_the_sources(capsys, tmp_path):
    code = main(["plan", "--cost", "--configfile", str(TINY), "--device", "cpu", "--target", "results/tiny/mixture.csv"])
    out = capsys.readouterr().out
    assert code == 0
    plan, rates = mx.plan(load_config(TINY)), all_rates("cpu")  # what the CLI reads: any results/rates/, then ours
    for key, spec in plan.items():
        line = next(l for l in out.splitlines() if l.strip().startswith(key + " "))
        assert f" {work(spec):,} " in line and " cpu " in line
    ali = rate_for(plan["random/ali/run0"], "cpu", 1, rates)
    hours = sum(work(s) / rate_for(s, "cpu", 1, rates).value for s in plan.values()) / 3600
    assert f"{len(plan)} runs, {hours:,.1f} CPU-hours" in out
    assert f"{ali.value:,.4g}" in out and ali.source in out  # the rate used and, once, where it came from


def test_plan_cost_of_an_unknown_target_names_the_known_ones(capsys):
    assert main(["plan", "--cost", "--target", "results/nope.csv"]) == 2
    err = capsys.readouterr().err
    assert "results/nope.csv" in err and "results/mixture.csv" in err
