"""The Snakemake workflow: dry runs of the paper preset, profiles, config validation, lint, and one
real run of the whole mixture DAG at a tiny scale (tests/tiny.yaml).

Snakemake runs in a fresh copy of the repository's workflow files (conftest.make_workdir), so the job
counts never depend on what an earlier run left in results/. The tiny run's results/tiny/ is removed
afterwards.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import (PAPER, PNG_MAGIC, TINY, canonical, job_stats, jobs, make_workdir, output, slurm_dry_run_of,
                      snakemake, train_specs)

from ali.config import load_config
from ali.cost import runtime_minutes
from ali.experiments import mixture as mx

PROTOCOLS = ("random", "fixed", "pacgan")  # the paper preset's: the paper's, the released code's, PacGAN's re-run
N_RUNS = 10  # ALI and GAN runs per protocol, as the paper and PacGAN
N_TRAIN = len(PROTOCOLS) * (2 * N_RUNS + len(mx.BASELINES))  # 3 x (10 x {ali, gan} + inverse, posthoc, vae) = 69


def planned_trainings(text: str, results: str = "results") -> Counter:
    """(protocol, model) -> number of mixture_train jobs, from the jobs' record.json outputs."""
    pattern = rf"output: {re.escape(results)}/mixture/(\w+)/(\w+)/run\d+/record\.json"
    return Counter(re.findall(pattern, text))


# --------------------------------------------------------------------------------------- dry runs
@pytest.fixture(scope="module")
def paper_dry_run(workdir) -> str:
    res = snakemake("-n", "-p", "--cores", "8", "results/mixture.csv", cwd=workdir)
    assert res.returncode == 0, output(res)[-3000:]
    return output(res)


def test_paper_dry_run_plans_every_training_evaluation_and_report(paper_dry_run):
    assert tuple(load_config(PAPER)["mixture"]["protocols"]) == PROTOCOLS
    assert len(mx.plan(load_config(PAPER))) == N_TRAIN
    stats = job_stats(paper_dry_run)
    assert stats["mixture_train"] == N_TRAIN    # on CPU (group_size auto): one job per run
    assert stats["mixture_evaluate"] == N_TRAIN
    assert stats["mixture_best"] == len(PROTOCOLS)  # one per protocol
    assert stats["mixture_report"] == 1
    assert stats["total"] == sum(v for k, v in stats.items() if k != "total")

    per_model = planned_trainings(paper_dry_run)
    assert sum(per_model.values()) == N_TRAIN
    for protocol in PROTOCOLS:
        assert per_model[(protocol, "ali")] == N_RUNS and per_model[(protocol, "gan")] == N_RUNS
        for baseline in ("inverse", "posthoc", "vae"):
            assert per_model[(protocol, baseline)] == 1
    assert sum(n for (p, m), n in per_model.items() if m in ("ali", "gan")) == 2 * N_RUNS * len(PROTOCOLS)


def test_paper_dry_run_trains_on_the_paper_budget(paper_dry_run):
    # the shell commands carry each run's spec: 200 epochs x 1,000 steps for ALI and GAN (PacGAN's: 400)
    specs = train_specs(paper_dry_run)
    assert len(specs) == N_TRAIN
    planned = [json.loads(canonical(s)) for s in mx.plan(load_config(PAPER)).values()]  # as JSON: tuples are lists
    assert sorted(specs, key=canonical) == sorted(planned, key=canonical)
    main = [s for s in specs if s["model"] in ("ali", "gan")]
    assert len(main) == 2 * N_RUNS * len(PROTOCOLS) and all(s["batch_size"] == 100 for s in main)
    assert all(s["steps"] == (400_000 if s["protocol"] == "pacgan" else 200_000) for s in main)
    assert all(s["nets"]["gen_hidden"] == 400 and s["nets"]["disc_hidden"] == 200 for s in specs)
    assert all(s["update"] == "simultaneous" for s in specs)
    # PacGAN drew a fresh training set per run; the other protocols share one
    pacgan = sorted((s for s in main if s["protocol"] == "pacgan"), key=lambda s: (s["run"], s["model"]))
    assert [s["data"]["seed"] for s in pacgan] == [5000 + i for i in range(N_RUNS) for _ in ("ali", "gan")]
    assert len({s["data"]["seed"] for s in main if s["protocol"] != "pacgan"}) == 1


def test_baselines_train_on_their_protocols_best_gan(paper_dry_run):
    for j in jobs(paper_dry_run, "mixture_train"):
        protocol, model = j["output"].split("/")[2:4]
        best = f"results/mixture/{protocol}/best.json"
        if model in mx.NEEDS_SOURCE:
            assert j["input"] == [best] and f"--in best={best} " in j["shell"], j
        else:
            assert "--in" not in j["shell"], j


@pytest.fixture(scope="module")
def slurm_dry_run(workdir) -> str:
    return slurm_dry_run_of(workdir, "results/mixture.csv")


def test_dry_run_with_the_slurm_profile(slurm_dry_run):
    assert job_stats(slurm_dry_run)["mixture_train"] == N_TRAIN
    train = jobs(slurm_dry_run, "mixture_train")
    assert len(train) == N_TRAIN
    assert all(j["resources"]["slurm_account"] == "testaccount" for j in train)
    plan = mx.plan(load_config(PAPER))  # each limit is the cost module's for that run on one CPU core
    limits = {j["output"].split("/", 2)[2].rsplit("/", 1)[0]: int(j["resources"]["runtime"]) for j in train}
    assert limits == {key: runtime_minutes(spec, "cpu") for key, spec in plan.items()}
    assert limits["pacgan/ali/run0"] > 400_000 / 40 / 60  # PacGAN's 400,000 steps at ~40 steps/s (issue 15)
    evaluate = [j["resources"] for j in jobs(slurm_dry_run, "mixture_evaluate")]
    # no partition in the rules: the plugin picks cpu or gpu by resources (tests/test_workflow_slurm.py)
    assert len(evaluate) == N_TRAIN and all("slurm_partition" not in r for r in evaluate)


def test_slurm_profile_sends_cpu_training_jobs_to_the_cpu_partition(slurm_dry_run):
    train = [j["resources"] for j in jobs(slurm_dry_run, "mixture_train")]
    assert train and all(r["gpu"] == "0" for r in train)  # the paper preset trains on CPU
    assert all("slurm_partition" not in r for r in train)


def test_dry_run_with_the_local_profile(workdir):
    res = snakemake("-n", "--workflow-profile", "workflow/profiles/local", "results/mixture.csv", cwd=workdir)
    assert res.returncode == 0, output(res)[-3000:]
    assert job_stats(output(res))["mixture_train"] == N_TRAIN


def test_default_target_builds_tables_and_every_figure(workdir):
    res = snakemake("-n", "--cores", "8", cwd=workdir)
    assert res.returncode == 0, output(res)[-3000:]
    stats = job_stats(output(res))
    assert stats["mixture_figure8"] == len(PROTOCOLS) and stats["mixture_figure8_main"] == 1


def test_config_override_on_the_command_line_is_accepted(workdir):
    res = snakemake("-n", "--cores", "8", "results/mixture.csv", "--config", "preset=paper", cwd=workdir)
    assert res.returncode == 0, output(res)[-3000:]


@pytest.mark.parametrize("section,key,value", [
    ("train", "update", "sideways"),
    ("train", "epochs", -1),
    ("eval", "hq_stds", 0),
])
def test_bad_config_value_stops_snakemake_naming_it(workdir, tmp_path, section, key, value):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"mixture": {section: {key: value}}}))
    res = snakemake("-n", "--configfile", str(bad), "--cores", "8", "results/mixture.csv", cwd=workdir)
    text = output(res)
    assert res.returncode != 0
    assert key in text and str(value) in text
    assert "Job stats" not in text


def test_unknown_config_key_is_rejected(workdir, tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text(yaml.safe_dump({"mixture": {"train": {"epoch": 3}}}))
    res = snakemake("-n", "--configfile", str(bad), "--cores", "8", "results/mixture.csv", cwd=workdir)
    assert res.returncode != 0
    assert "'epoch'" in output(res)  # the typo itself, not the valid key 'epochs'


def test_ali_and_snakemake_reject_a_bad_config_with_the_same_line(workdir, tmp_path):
    """One schema, one message: the line the Snakefile prints first is the one `ali plan` prints."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("semisup:\n  lr: 3e-4\n")  # YAML 1.1 reads 3e-4 as a string
    res = snakemake("results/mixture.csv", f"--configfile={bad}", "-n", "--cores", "1", cwd=workdir)
    assert res.returncode != 0
    line = next(x for x in output(res).splitlines() if x.startswith("config error:"))
    assert line.endswith("(YAML reads 3e-4 as a string: write 3.0e-4)"), line
    cli = subprocess.run([sys.executable, "-m", "ali", "plan", "--configfile", str(bad)], cwd=workdir,
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2 and cli.stderr.strip() == line


def test_lint_reports_nothing(workdir):
    """`snakemake --lint` finds nothing: every rule has a log and a conda environment, no rule reads a
    variable from outside it, helpers live in common.smk apart from the rules."""
    res = snakemake("--lint", cwd=workdir)
    text = output(res)
    lints = re.findall(r"^\s+\* (.+?):?$", text, flags=re.M)
    assert res.returncode == 0 and not lints, text[-5000:]


# ------------------------------------------------------------------------------- tiny real run
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The mixture DAG of tests/tiny.yaml: random and fixed with every baseline, pacgan's ALI and GAN alone."""
    cfg = yaml.safe_load(TINY.read_text())
    assert cfg["preset"] == "tiny"
    repo = make_workdir(tmp_path_factory.mktemp("tiny") / "repo")
    res = snakemake("--configfile", str(TINY), "--cores", "2", "mixture", cwd=repo, timeout=600)
    assert res.returncode == 0, output(res)[-5000:]
    yield repo, res
    shutil.rmtree(repo / "results" / "tiny", ignore_errors=True)


@pytest.mark.slow
def test_tiny_run_writes_both_tables(tiny_run):
    repo, _ = tiny_run
    results = repo / "results" / "tiny"
    table, runs = pd.read_csv(results / "mixture.csv"), pd.read_csv(results / "mixture_runs.csv")
    pairs = sorted(zip(table["protocol"], table["model"]))
    models = ("ali", "gan", "inverse", "posthoc", "vae")
    expected = [(p, m) for p in ("random", "fixed") for m in models] + [("pacgan", "ali"), ("pacgan", "gan")]
    assert pairs == sorted(expected)  # one row per protocol x model; pacgan trains no baselines here
    assert (table["n_runs"] == 1).all() and (table["preset"] == "tiny").all()
    assert len(runs) == 12 and set(runs["status"]) <= {"ok", "diverged", "nonfinite_samples"}
    steps = dict(zip(zip(runs["protocol"], runs["model"]), runs["steps_planned"]))
    assert steps == {pair: 40 if pair[0] == "pacgan" else 20 for pair in expected}  # pacgan: 2 epochs of 20
    assert table["scale"].str.contains("NOT comparable").all()
    assert runs["scale"].str.contains("NOT comparable").all()
    # baselines trained on the best GAN of their own protocol
    for _, row in runs[runs["model"].isin(["inverse", "posthoc"])].iterrows():
        assert f"/mixture/{row['protocol']}/gan/run0" in row["source_run"]


@pytest.mark.slow
def test_published_numbers_only_beside_the_protocol_they_belong_to(tiny_run):
    repo, _ = tiny_run
    table = pd.read_csv(repo / "results" / "tiny" / "mixture.csv")
    paper = [c for c in table.columns if c.startswith("paper_")]
    pacgan = [c for c in table.columns if c.startswith("pacgan_")]
    assert "paper_modes_mean" in paper and "pacgan_strict_modes_mean" in pacgan

    def filled(cols: list[str]) -> set[tuple[str, str]]:
        rows = table[table[cols].notna().any(axis=1)]
        return set(zip(rows["protocol"], rows["model"]))

    assert filled(paper) == {("random", "ali"), ("random", "gan")}
    assert filled(pacgan) == {("pacgan", "ali"), ("pacgan", "gan")}  # PacGAN's re-run, not the fixed protocol
    for cols in (paper, pacgan):  # and complete where they appear
        rows = table[table[cols].notna().any(axis=1)]
        assert rows[cols].notna().all().all()
    ali_random = table[(table["protocol"] == "random") & (table["model"] == "ali")].iloc[0]
    assert ali_random["paper_modes_mean"] == 13.4 and ali_random["paper_modes_std"] == 5.8


@pytest.mark.slow
def test_tiny_run_draws_figure8_for_each_protocol(tiny_run):
    repo, _ = tiny_run
    results = repo / "results" / "tiny"
    for name in ("figure8.png", "figure8_random.png", "figure8_fixed.png", "figure8_pacgan.png"):
        data = (results / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, name
    # figure8.png is the figure protocol's (the paper's: random)
    assert (results / "figure8.png").read_bytes() == (results / "figure8_random.png").read_bytes()


@pytest.mark.slow
def test_tiny_run_records_provenance_per_run(tiny_run):
    repo, _ = tiny_run
    runs = pd.read_csv(repo / "results" / "tiny" / "mixture_runs.csv")
    assert runs["config_hash"].str.fullmatch(r"[0-9a-f]{12}").all()
    assert runs["config_hash"].is_unique
    assert runs["code_version"].notna().all() and runs["version_torch"].notna().all()
    released = runs["protocol"].isin(["fixed", "pacgan"])  # the released code's Adam, in Blocks' convention
    assert (runs.loc[released, "adam_config_convention"] == "blocks").all()
    assert runs.loc[released, "beta1_torch"].round(12).eq(0.2).all()


@pytest.mark.slow
def test_rerun_is_idempotent(tiny_run):
    repo, _ = tiny_run
    res = snakemake("--configfile", str(TINY), "--cores", "2", "mixture", cwd=repo)
    assert res.returncode == 0, output(res)[-3000:]
    assert "Nothing to be done" in output(res)
