"""The K+1 part of the Snakemake workflow (workflow/rules/semisup.smk and the table1 rule): dry runs of
the paper preset (with and without the SLURM profile) and of the smoke preset.

As in tests/test_workflow.py, Snakemake runs in a fresh copy of the workflow files (top-level files,
workflow/ and config/), so nothing under the checkout's results/ or .snakemake/ is read or locked.
The helpers are copied from there (not imported) so this file does not depend on its internals.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ali.config import load_config
from ali.experiments import semisup

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_DIRS = ("workflow", "config")
MODELS = ("ali_kplus1", "gan_fm")
SEEDS = (0, 1, 2)
CIFAR_LABELS = (1000, 2000, 4000, 8000)
RUN = re.compile(r"(?P<results>\S+?)/semisup/(?P<dataset>\w+?)/(?P<model>\w+)/labels(?P<n>\d+)/seed(?P<seed>\d+)/"
                 r"record\.json")


def make_workdir(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for item in REPO.iterdir():
        if item.is_file():
            shutil.copy2(item, dest / item.name)
    for name in WORKFLOW_DIRS:
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def snakemake(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """--configfile takes several values: callers put it before every other option and target."""
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def output(res: subprocess.CompletedProcess) -> str:
    return res.stdout + res.stderr


def job_stats(text: str) -> dict[str, int]:
    """The 'Job stats' table: {rule: count}, with 'total'."""
    table = text[text.index("Job stats:"):]
    stats = {}
    for line in table.splitlines()[3:]:
        m = re.fullmatch(r"\s*(\S+)\s+(\d+)\s*", line)
        if not m:
            break
        stats[m.group(1)] = int(m.group(2))
    return stats


def jobs(text: str, rule: str) -> list[dict]:
    """Every job of ``rule``: {'output': str, 'input': [str], 'resources': {name: value}, 'shell': str}."""
    found = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        if not re.match(rf"(?:local)?rule {rule}:", block):
            continue
        out = re.search(r"^\s+output: (.*)$", block, flags=re.M)
        inp = re.search(r"^\s+input: (.*)$", block, flags=re.M)
        res = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        shell = re.search(r"^Shell command: (.*)$", block, flags=re.M)
        found.append({"output": out.group(1) if out else "", "input": inp.group(1).split(", ") if inp else [],
                      "resources": dict(kv.split("=", 1) for kv in res.group(1).split(", ")) if res else {},
                      "shell": shell.group(1) if shell else ""})
    return found


def trained_runs(text: str) -> Counter:
    """(results dir, dataset, model, labels, seed) -> number of semisup_train jobs writing it."""
    runs = Counter()
    for j in jobs(text, "semisup_train"):
        m = RUN.fullmatch(j["output"])
        assert m, j["output"]
        runs[(m["results"], m["dataset"], m["model"], int(m["n"]), int(m["seed"]))] += 1
    return runs


def spec_of(shell: str) -> dict:
    m = re.search(r"\$ALI train --spec '(\{.*?\})'", shell)
    assert m, shell
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return make_workdir(tmp_path_factory.mktemp("wf_semisup") / "repo")


def dry_run(workdir: Path, *args: str) -> str:
    res = snakemake("-n", "-p", *args, cwd=workdir)
    assert res.returncode == 0, output(res)[-3000:]
    return output(res)


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
    assert stats["table2"] == 1 and stats["table1_kplus1_rows"] == 1 and stats["table1"] == 1
    runs = trained_runs(paper_tables)
    assert set(runs) == CIFAR_RUNS | SVHN_RUNS and set(runs.values()) == {1}
    for rule in ("semisup_train", "semisup_evaluate"):
        found = jobs(paper_tables, rule)
        assert len(found) == 30 and all(j["resources"]["gpu"] == "1" for j in found), rule


def test_paper_jobs_carry_the_plans_specs(paper_tables):
    plan = semisup.plan(load_config(REPO / "config" / "paper.yaml"))
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


def test_reports_collect_exactly_their_runs(paper_tables):
    (t2,) = jobs(paper_tables, "table2")
    t2_metrics = {p for p in t2["input"] if p.endswith("metrics.json")}
    assert len(t2_metrics) == 24 and all("/cifar10/" in p for p in t2_metrics)
    assert t2["output"] == "results/table2.csv" and "--table2-dataset cifar10" in t2["shell"]
    (rows,) = jobs(paper_tables, "table1_kplus1_rows")
    row_metrics = {p for p in rows["input"] if p.endswith("metrics.json")}
    assert len(row_metrics) == 6 and all("/svhn/" in p and "labels1000" in p for p in row_metrics)
    assert "--table1-dataset svhn" in rows["shell"] and "--table1-labels 1000" in rows["shell"]
    (table1,) = jobs(paper_tables, "table1")
    assert "results/semisup/table1_kplus1_rows.csv" in table1["input"]
    assert re.search(r"--extra-rows results/semisup/table1_kplus1_rows\.csv", table1["shell"]), table1["shell"]


# -------------------------------------------------------------------------------- SLURM profile
@pytest.fixture(scope="module")
def slurm_dry_run(workdir) -> str:
    res = snakemake("-n", "--workflow-profile", "workflow/profiles/slurm", "results/table2.csv", cwd=workdir)
    assert res.returncode == 0, output(res)[-3000:]
    return output(res)


def test_slurm_profile_dry_run(slurm_dry_run):
    assert job_stats(slurm_dry_run)["semisup_train"] >= 24
    train = jobs(slurm_dry_run, "semisup_train")
    assert train and all(j["resources"]["gpu"] == "1" for j in train)
    assert all(j["resources"]["slurm_account"] and j["resources"]["runtime"] == "4320" for j in train)


def test_slurm_profile_sends_kplus1_gpu_jobs_to_the_gpu_partition(slurm_dry_run):
    for rule in ("semisup_train", "semisup_evaluate"):  # both ask for gpu=1 in the paper preset
        found = jobs(slurm_dry_run, rule)
        assert found and all(j["resources"]["slurm_partition"] == "gpu" for j in found), rule


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
    assert t2["output"] == "results/smoke/table2.csv" and "--table2-dataset digits" in t2["shell"]
    (rows,) = jobs(smoke_dry_run, "table1_kplus1_rows")
    assert rows["output"] == "results/smoke/semisup/table1_kplus1_rows.csv"
    assert "--table1-dataset digits" in rows["shell"] and "--table1-labels 100" in rows["shell"]
    (table1,) = jobs(smoke_dry_run, "table1")
    assert table1["output"].split(", ") == ["results/smoke/svm_trials.csv", "results/smoke/table1.csv"]
    assert "results/smoke/semisup/table1_kplus1_rows.csv" in table1["input"]
    outputs = [j["output"] for rule in ("semisup_train", "semisup_evaluate", "table2", "table1_kplus1_rows", "table1")
               for j in jobs(smoke_dry_run, rule)]
    assert outputs and all(o.startswith("results/smoke/") for out in outputs for o in out.split(", "))
