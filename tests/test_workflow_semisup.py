"""The K+1 part of the Snakemake workflow (workflow/rules/semisup.smk and the table1 rule): dry runs of
the paper preset (with and without the SLURM profile) and of the smoke preset.

Snakemake runs in a fresh copy of the workflow files (conftest.make_workdir), so nothing under the
checkout's results/ or .snakemake/ is read or locked.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from conftest import PAPER, dry_run, in_args, job_stats, jobs, slurm_dry_run_of, train_specs

from ali.config import load_config
from ali.experiments import semisup

MODELS = ("ali_kplus1", "gan_fm")
SEEDS = (0, 1, 2)
CIFAR_LABELS = (1000, 2000, 4000, 8000)
RUN = re.compile(r"(?P<results>\S+?)/semisup/(?P<dataset>\w+?)/(?P<model>\w+)/labels(?P<n>\d+)/seed(?P<seed>\d+)/"
                 r"record\.json")


def trained_runs(text: str) -> Counter:
    """(results dir, dataset, model, labels, seed) -> number of semisup_train jobs writing it."""
    runs = Counter()
    for j in jobs(text, "semisup_train"):
        m = RUN.fullmatch(j["output"])
        assert m, j["output"]
        runs[(m["results"], m["dataset"], m["model"], int(m["n"]), int(m["seed"]))] += 1
    return runs


def spec_of(shell: str) -> dict:
    (spec,) = train_specs(shell)
    return spec


CIFAR_RUNS = {("results", "cifar10", m, n, s) for m in MODELS for n in CIFAR_LABELS for s in SEEDS}
SVHN_RUNS = {("results", "svhn", m, 1000, s) for m in MODELS for s in SEEDS}


# ---------------------------------------------------------------------------------- paper preset
@pytest.fixture(scope="module")
def paper_tables(workdir) -> str:
    return dry_run(workdir, "--cores", "8", "results/table2.csv", "results/table1.csv")


@pytest.fixture(scope="module")
def paper_table2(workdir) -> str:
    return dry_run(workdir, "--cores", "8", "results/table2.csv")


def test_table2_lists_every_cifar10_run_on_a_gpu(paper_table2):
    runs = trained_runs(paper_table2)
    assert CIFAR_RUNS <= set(runs) and all(runs[r] == 1 for r in CIFAR_RUNS)  # 2 x 4 x 3 = 24, once each
    assert len(CIFAR_RUNS) == 24
    train = jobs(paper_table2, "semisup_train")
    assert train and all(j["resources"]["gpu"] == "1" for j in train)
    assert job_stats(paper_table2)["table2"] == 1


def test_table2_alone_trains_only_the_cifar10_runs(paper_table2):
    assert set(trained_runs(paper_table2)) == CIFAR_RUNS
    assert job_stats(paper_table2)["semisup_train"] == 24


def test_both_tables_train_cifar10_and_svhn_runs_once_each(paper_tables):
    stats = job_stats(paper_tables)
    assert stats["semisup_train"] == 30 and stats["semisup_evaluate"] == 30
    assert stats["table2"] == 1 and stats["table1"] == 1
    assert "table1_kplus1_rows" not in stats  # Table 1 reads the K+1 runs itself
    runs = trained_runs(paper_tables)
    assert set(runs) == CIFAR_RUNS | SVHN_RUNS and set(runs.values()) == {1}
    for rule in ("semisup_train", "semisup_evaluate"):
        found = jobs(paper_tables, rule)
        assert len(found) == 30 and all(j["resources"]["gpu"] == "1" for j in found), rule


def test_paper_jobs_carry_the_plans_specs(paper_tables):
    plan = semisup.plan(load_config(PAPER))
    train = jobs(paper_tables, "semisup_train")
    seen = {}
    for j in train:
        m = RUN.fullmatch(j["output"])
        key = f"{m['dataset']}/{m['model']}/labels{m['n']}/seed{m['seed']}"
        seen[key] = spec_of(j["shell"])
        assert "--device auto" in j["shell"], j["shell"]
        assert j["resources"]["runtime"] == "4320"
    assert seen == plan
    cifar = [s for s in seen.values() if s["dataset"] == "cifar10"]
    assert all(s["steps"] == 600_000 and s["batch_size"] == 100 and s["adam"]["lr"] == 3e-4 for s in cifar)


def run_dirs(job: dict) -> set[str]:
    """The run directories whose metrics.json a report job waits for."""
    return {p.removesuffix("/metrics.json") for p in job["input"] if p.endswith("/metrics.json")}


def test_reports_collect_exactly_their_runs(paper_tables):
    (t2,) = jobs(paper_tables, "table2")
    t2_runs = run_dirs(t2)
    assert len(t2_runs) == 24 and all("/cifar10/" in d for d in t2_runs)
    assert t2["output"] == "results/table2.csv" and "--out table=results/table2.csv" in t2["shell"]
    assert set(in_args(t2["shell"], "runs")) == t2_runs  # the report reads exactly the runs it waits for
    (table1,) = jobs(paper_tables, "table1")
    k_runs = {d for d in run_dirs(table1) if "/semisup/" in d}
    assert len(k_runs) == 6 and all("/svhn/" in d and "/labels1000/" in d for d in k_runs)
    assert set(in_args(table1["shell"], "semisup")) == k_runs
    svm_runs = {d for d in run_dirs(table1) if "/svm/" in d}
    assert svm_runs == {f"results/svm/svhn/{s}/seed{k}" for s in ("ali", "vae", "gan") for k in (0, 1, 2)} | {
        "results/svm/svhn/raw/seed0"}   # three training seeds per source model, pixels once
    assert set(in_args(table1["shell"], "svm")) == svm_runs
    assert "--out trials=results/svm_trials.csv table=results/table1.csv" in table1["shell"]


# -------------------------------------------------------------------------------- SLURM profile
@pytest.fixture(scope="module")
def slurm_dry_run(workdir) -> str:
    return slurm_dry_run_of(workdir, "results/table2.csv")


def test_slurm_profile_dry_run(slurm_dry_run):
    assert job_stats(slurm_dry_run)["semisup_train"] >= 24
    train = jobs(slurm_dry_run, "semisup_train")
    assert train and all(j["resources"]["gpu"] == "1" for j in train)
    assert all(j["resources"]["slurm_account"] == "testaccount" and j["resources"]["runtime"] == "4320"
               for j in train)


def test_slurm_profile_leaves_kplus1_gpu_jobs_to_the_plugins_gpu_partition(slurm_dry_run):
    for rule in ("semisup_train", "semisup_evaluate"):  # both ask for gpu=1 in the paper preset
        found = jobs(slurm_dry_run, rule)
        assert found and all(j["resources"]["gpu"] == "1" for j in found), rule
        assert all("slurm_partition" not in j["resources"] for j in found), rule  # placed by partitions.yaml


# --------------------------------------------------------------------------------- smoke preset
@pytest.fixture(scope="module")
def smoke_dry_run(workdir) -> str:
    return dry_run(workdir, "--configfile", "config/smoke.yaml", "--cores", "2", "results/smoke/table2.csv",
                   "results/smoke/table1.csv")


def test_smoke_dry_run_trains_digits_on_cpu(smoke_dry_run):
    runs = trained_runs(smoke_dry_run)
    assert set(runs) == {("results/smoke", "digits", m, n, 0) for m in MODELS for n in (50, 100)}
    train = jobs(smoke_dry_run, "semisup_train")
    assert len(train) == 4 and all(j["resources"]["gpu"] == "0" for j in train)
    assert all(j["input"] == [] or not any("verified" in p for p in j["input"]) for j in train)  # digits: no download
    for j in train:
        spec = spec_of(j["shell"])
        assert spec["preset"] == "smoke" and spec["dataset"] == "digits" and spec["batch_size"] == 25
        assert "--device cpu" in j["shell"]
    assert all(j["resources"]["gpu"] == "0" for j in jobs(smoke_dry_run, "semisup_evaluate"))


def test_smoke_targets_live_under_results_smoke(smoke_dry_run):
    (t2,) = jobs(smoke_dry_run, "table2")
    assert t2["output"] == "results/smoke/table2.csv"
    assert set(in_args(t2["shell"], "runs")) == run_dirs(t2) and all("/digits/" in d for d in run_dirs(t2))
    assert len(run_dirs(t2)) == 4  # {ali_kplus1, gan_fm} x {50, 100} labels
    (table1,) = jobs(smoke_dry_run, "table1")
    assert table1["output"].split(", ") == ["results/smoke/svm_trials.csv", "results/smoke/table1.csv"]
    assert set(in_args(table1["shell"], "semisup")) == {f"results/smoke/semisup/digits/{m}/labels100/seed0"
                                                        for m in MODELS}
    outputs = [j["output"] for rule in ("semisup_train", "semisup_evaluate", "table2", "table1")
               for j in jobs(smoke_dry_run, rule)]
    assert outputs and all(o.startswith("results/smoke/") for out in outputs for o in out.split(", "))
