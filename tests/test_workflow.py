"""The Snakemake workflow: dry runs of the paper preset, profiles, config validation, lint, and one
real run of the whole DAG at a tiny scale (tests/tiny.yaml).

Snakemake runs in a fresh copy of the repository's workflow files (the top-level files such as the
Snakefile, plus workflow/ and config/; no results/, no .snakemake/), so the job counts never depend
on what an earlier run left in results/, and a test never contends for the checkout's .snakemake
lock with a workflow that someone is running there. The `ali` package the rules call is the
checkout's own (installed editable). The tiny run's results/tiny/ is removed afterwards.
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

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "tiny.yaml"
WORKFLOW_DIRS = ("workflow", "config")  # with the top-level files (Snakefile, ...): all the workflow reads
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_workdir(dest: Path) -> Path:
    """A fresh copy of the workflow: no results/, no .snakemake/, no data or environments."""
    dest.mkdir(parents=True)
    for item in REPO.iterdir():
        if item.is_file():
            shutil.copy2(item, dest / item.name)
    for name in WORKFLOW_DIRS:
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A clean copy for dry runs and lint (nothing under results/)."""
    return make_workdir(tmp_path_factory.mktemp("wf") / "repo")


def snakemake(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Note: --configfile takes several values, so callers put it before any target."""
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def output(res: subprocess.CompletedProcess) -> str:
    return res.stdout + res.stderr


def job_stats(text: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake (dry) run: {rule: count}, with 'total'."""
    table = text[text.index("Job stats:"):]
    stats = {}
    for line in table.splitlines()[3:]:
        m = re.fullmatch(r"\s*(\S+)\s+(\d+)\s*", line)
        if not m:
            break
        stats[m.group(1)] = int(m.group(2))
    return stats


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
    stats = job_stats(paper_dry_run)
    assert stats["mixture_train"] == 46      # 2 protocols x (10 runs x {ali, gan} + 3 baselines)
    assert stats["mixture_evaluate"] == 46
    assert stats["mixture_best"] == 2        # one per protocol
    assert stats["mixture_report"] == 1
    assert stats["total"] == sum(v for k, v in stats.items() if k != "total")

    per_model = planned_trainings(paper_dry_run)
    assert sum(per_model.values()) == 46
    for protocol in ("random", "fixed"):
        assert per_model[(protocol, "ali")] == 10 and per_model[(protocol, "gan")] == 10
        for baseline in ("inverse", "posthoc", "vae"):
            assert per_model[(protocol, baseline)] == 1
    assert sum(n for (p, m), n in per_model.items() if m in ("ali", "gan")) == 40


def test_paper_dry_run_trains_on_the_paper_budget(paper_dry_run):
    # the shell commands carry each run's spec: 200 epochs x 1,000 steps for ALI and GAN
    specs = re.findall(r"\$ALI train --spec '(\{.*?\})'", paper_dry_run)
    assert len(specs) == 46
    specs = [json.loads(s) for s in specs]
    main = [s for s in specs if s["model"] in ("ali", "gan")]
    assert len(main) == 40 and all(s["steps"] == 200_000 and s["batch_size"] == 100 for s in main)
    assert all(s["nets"]["gen_hidden"] == 400 and s["nets"]["disc_hidden"] == 200 for s in specs)
    assert all(s["update"] == "simultaneous" for s in specs)


@pytest.fixture(scope="module")
def slurm_dry_run(workdir) -> str:
    res = snakemake("-n", "--workflow-profile", "workflow/profiles/slurm", "results/mixture.csv", cwd=workdir)
    assert res.returncode == 0, output(res)[-3000:]
    return output(res)


def job_resources(text: str, rule: str) -> list[dict[str, str]]:
    """The 'resources:' line of every job of ``rule`` in a dry run, parsed into {name: value}."""
    found = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        if re.match(rf"(?:local)?rule {rule}:", block):
            m = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
            found.append(dict(kv.split("=", 1) for kv in m.group(1).split(", ")) if m else {})
    return found


def test_dry_run_with_the_slurm_profile(slurm_dry_run):
    assert job_stats(slurm_dry_run)["mixture_train"] == 46
    train = job_resources(slurm_dry_run, "mixture_train")
    assert len(train) == 46
    assert all(r["runtime"] == "150" for r in train)
    evaluate = job_resources(slurm_dry_run, "mixture_evaluate")
    # no partition in the rules: the plugin picks cpu or gpu by resources (tests/test_workflow_slurm.py)
    assert len(evaluate) == 46 and all("slurm_partition" not in r for r in evaluate)


def test_slurm_profile_sends_cpu_training_jobs_to_the_cpu_partition(slurm_dry_run):
    train = job_resources(slurm_dry_run, "mixture_train")
    assert train and all(r["gpu"] == "0" for r in train)  # the paper preset trains on CPU
    assert all("slurm_partition" not in r for r in train)


def test_dry_run_with_the_local_profile(workdir):
    res = snakemake("-n", "--workflow-profile", "workflow/profiles/local", "results/mixture.csv", cwd=workdir)
    assert res.returncode == 0, output(res)[-3000:]
    assert job_stats(output(res))["mixture_train"] == 46


def test_default_target_builds_tables_and_every_figure(workdir):
    res = snakemake("-n", "--cores", "8", cwd=workdir)
    assert res.returncode == 0, output(res)[-3000:]
    stats = job_stats(output(res))
    assert stats["mixture_figure8"] == 2 and stats["mixture_figure8_main"] == 1


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


# Lints that `snakemake --lint` reported when these tests were written; reported to the workflow's
# authors rather than asserted away. A new kind of lint fails the test.
KNOWN_LINTS = (
    "No log directive defined",
    "Specify a conda environment or container for each rule.",
    "Shell command directly uses variable ALI from outside of the rule",
    "Mixed rules and functions in same snakefile.",
)


def test_lint(workdir):
    res = snakemake("--lint", cwd=workdir)
    text = output(res)
    if res.returncode == 0:
        return
    lints = set(re.findall(r"^\s+\* (.+?):?$", text, flags=re.M))
    assert lints, text[-3000:]  # a non-zero exit must come from lints, not from an error
    unknown = {lint for lint in lints if not any(lint.startswith(k) for k in KNOWN_LINTS)}
    assert not unknown, text[-5000:]


# ------------------------------------------------------------------------------- tiny real run
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
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
    assert pairs == sorted((p, m) for p in ("random", "fixed") for m in models)  # one row per protocol x model
    assert (table["n_runs"] == 1).all() and (table["preset"] == "tiny").all()
    assert len(runs) == 10 and set(runs["status"]) <= {"ok", "diverged", "nonfinite_samples"}
    assert (runs["steps_planned"] == 20).all()
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
    assert filled(pacgan) == {("fixed", "ali"), ("fixed", "gan")}
    for cols in (paper, pacgan):  # and complete where they appear
        rows = table[table[cols].notna().any(axis=1)]
        assert rows[cols].notna().all().all()
    ali_random = table[(table["protocol"] == "random") & (table["model"] == "ali")].iloc[0]
    assert ali_random["paper_modes_mean"] == 13.4 and ali_random["paper_modes_std"] == 5.8


@pytest.mark.slow
def test_tiny_run_draws_figure8_for_each_protocol(tiny_run):
    repo, _ = tiny_run
    results = repo / "results" / "tiny"
    for name in ("figure8.png", "figure8_random.png", "figure8_fixed.png"):
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
    assert (runs["adam_config_convention"][runs["protocol"] == "fixed"] == "blocks").all()
    assert runs.loc[runs["protocol"] == "fixed", "beta1_torch"].round(12).eq(0.2).all()


@pytest.mark.slow
def test_rerun_is_idempotent(tiny_run):
    repo, _ = tiny_run
    res = snakemake("--configfile", str(TINY), "--cores", "2", "mixture", cwd=repo)
    assert res.returncode == 0, output(res)[-3000:]
    assert "Nothing to be done" in output(res)
