"""What several test files share: the repository's paths, torch's thread count, Snakemake in a fresh
copy of the workflow, the parsing of its dry runs, and run directories written by hand.

Torch threads: every test runs with one thread (as `ali` jobs do by default; on a loaded 2-core machine
two threads spin-wait for each other), and any change a test makes (the CLI sets the count) is undone
after it. A module that wants another count says so with ``pytestmark = pytest.mark.torch_threads(n)``.

Snakemake runs in a copy of the workflow's files (every top-level file, workflow/, config/ and
profiles/, the default profile Snakemake reads by itself; no
results/, no .snakemake/), so job counts never depend on what an earlier run left in results/ and a
test never contends for the checkout's .snakemake lock. The `ali` the rules call is the checkout's own
(installed editable).
"""

from __future__ import annotations

import copy

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "config" / "paper.yaml"
SMOKE = REPO / "config" / "smoke.yaml"
TINY = REPO / "tests" / "tiny.yaml"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
WORKFLOW_DIRS = ("workflow", "config", "profiles", "examples")  # with the top-level files (Snakefile, environment.yml, ...)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SLURM_ACCOUNT = {"SBATCH_ACCOUNT": "testaccount"}  # the SLURM profile's account comes from SLURM's own variable


# ----------------------------------------------------------------------------------- torch threads
def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "torch_threads(n): run the module's tests with n torch threads (default 1)")


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread_per_session():
    """One thread from the start, so module-scoped fixtures (tiny training runs) get it too."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _torch_threads(request):
    """Each test: the module's ``torch_threads`` count (default 1); afterwards the count it found."""
    before = torch.get_num_threads()
    marker = request.node.get_closest_marker("torch_threads")
    torch.set_num_threads(marker.args[0] if marker else 1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------------------- snakemake
def make_workdir(dest: Path) -> Path:
    """A fresh copy of the workflow: no results/, no .snakemake/, no data or environments."""
    dest.mkdir(parents=True)
    for item in REPO.iterdir():
        if item.is_file():
            shutil.copy2(item, dest / item.name)
    for name in WORKFLOW_DIRS:
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    """One clean copy for every dry run and lint of the session (a dry run writes no results)."""
    return make_workdir(tmp_path_factory.mktemp("wf") / "repo")


def snakemake(*args: str, cwd: Path, timeout: int = 300, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess:
    """Snakemake in a subprocess, with ``env`` added to the environment. --configfile takes several
    values: callers put it before any target."""
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def output(res: subprocess.CompletedProcess) -> str:
    return res.stdout + res.stderr


def dry_run(workdir: Path, *args: str) -> str:
    """The text of a dry run that prints its shell commands (-n -p); it must succeed."""
    res = snakemake("-n", "-p", *args, cwd=workdir)
    assert res.returncode == 0, output(res)[-3000:]
    return output(res)


def slurm_dry_run_of(workdir: Path, *targets: str) -> str:
    """The text of a dry run through the SLURM profile, with an account as $SBATCH_ACCOUNT gives it."""
    res = snakemake("-n", "--workflow-profile", "workflow/profiles/slurm", *targets, cwd=workdir, env=SLURM_ACCOUNT)
    assert res.returncode == 0, output(res)[-3000:]
    return output(res)


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


def jobs(text: str, rule: str) -> list[dict]:
    """Every job of ``rule`` in a dry run: {'output': str, 'input': [str], 'resources': {name: value},
    'shell': str} (the shell command only with -p)."""
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


def train_specs(text: str, experiment: str | None = None) -> list[dict]:
    """The --spec JSON of every `ali train` command a dry run prints (-p), of one experiment if named."""
    specs = [json.loads(s) for s in re.findall(r"\$ALI train --spec '(\{.*?\})'", text)]
    return [s for s in specs if experiment is None or s["experiment"] == experiment]


def canonical(obj) -> str:
    """JSON with sorted keys: a sort key for specs, whose keys come in any order."""
    return json.dumps(obj, sort_keys=True)


def in_args(shell: str, name: str) -> list[str]:
    """The paths a shell command passes as ``--in`` ``name=PATH``."""
    return re.findall(rf"(?<=\s){re.escape(name)}=(\S+)", shell)


# ----------------------------------------------------------------------------------------- networks
def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def stack_rows(stack) -> list[list]:
    """The modules of each table row of an ``ali.nets.conv.Stack`` (its ``layer_ends`` split them)."""
    mods, start, rows = list(stack), 0, []
    for end in stack.layer_ends:
        rows.append(mods[start:end])
        start = end
    return rows


# ------------------------------------------------------------------------------ hand-written runs
def write_fake_semisup_run(root: Path, spec: dict, error: float | None) -> Path:
    """A K+1 run directory as training and `ali evaluate` leave it: record.json as runs.run_training
    writes it, metrics.json as semisup.evaluate_run does (``error`` None: a diverged run)."""
    from ali.provenance import config_hash, provenance

    d = root / spec["dataset"] / spec["model"] / f"labels{spec['n_labels']}" / f"seed{spec['seed']}"
    d.mkdir(parents=True)
    status = "ok" if error is not None else "diverged"
    h = config_hash(spec)
    record = {"spec": spec, "config_hash": h, "run_dir": str(d), "provenance": provenance(torch.device("cpu")),
              "status": status, "steps_done": spec["steps"], "diverged": error is None,
              "diverged_by_step": None if error is not None else 100, "wall_time_s": 12.5,
              "resumed_from_step": None, "final_losses": {"loss_d": 1.0, "loss_g": 0.5},
              "finished_at": "2026-01-01T00:00:00+0000"}
    metrics = {"run_dir": str(d), "config_hash": h, "status": status}
    if error is not None:
        metrics.update({"test_error_pct": error, "test_error_polyak_current_bn_pct": error + 0.5,
                        "test_error_last_weights_pct": error + 1.0, "n_test": 10_000})
    (d / "record.json").write_text(json.dumps(record))
    (d / "metrics.json").write_text(json.dumps(metrics))
    return d


def with_key(cfg: dict, path: str, value) -> dict:
    """A copy of ``cfg`` with the dotted key ``path`` set to ``value`` (a bad value, a changed budget)."""
    cfg = copy.deepcopy(cfg)
    *parents, last = path.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[last] = value
    return cfg
