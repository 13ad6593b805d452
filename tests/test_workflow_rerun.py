"""An interrupted workflow finishes when the same command runs again (issue 18, item 1).

A real Snakemake run of a small mixture target is killed as a power cut or an OOM killer kills it:
SIGKILL to its whole process group, while a job has written its output but Snakemake has not yet
recorded it complete. That output is then marked incomplete, and without rerun-incomplete the next
run stops with IncompleteFilesException. The same command again must finish, with the numbers of an
uninterrupted run (CPU, one thread: bit-identical). profiles/default/ is what makes it so.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import SMOKE, make_workdir, output

from ali.cli import main as ali
from ali.config import deep_update, load_config
from ali.experiments.base import experiment

RUNS = [f"results/smoke/mixture/fixed/ali/run{i}" for i in (0, 1)]
TARGETS = [f"{run}/metrics.json" for run in RUNS]
OUTPUTS = [f"{run}/{name}" for run in RUNS for name in ("record.json", "metrics.json")]
# The smoke preset's fixed protocol, 2 runs, made small by a second config file (Snakemake's --config
# cannot: it reads nested values as strings).
SMALL = """
mixture:
  data: {n_train: 2000, n_heldout: 500}
  nets: {gen_hidden: 32, disc_hidden: 16}
  train: {epochs: 2}
  eval: {n_samples: 1000, n_strict_samples: 500, mmd_samples: 200}
"""
COMMAND = [sys.executable, "-m", "snakemake", *TARGETS, "--configfile", "config/smoke.yaml", "small.yaml",
           "--cores", "1"]
VOLATILE = ("run_dir", "group_checkpoint", "wall_time_s", "finished_at", "provenance")  # where and when, not what


def small_workdir(dest: Path) -> Path:
    repo = make_workdir(dest)
    (repo / "small.yaml").write_text(SMALL)
    return repo


def run(repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run(COMMAND, cwd=repo, capture_output=True, text=True, timeout=300)


def kill_when_an_output_appears(repo: Path) -> bool:
    """Start COMMAND in its own process group; SIGKILL the group the moment a new output exists.
    False when the run ended before any new output appeared."""
    before = {p for p in OUTPUTS if (repo / p).exists()}
    proc = subprocess.Popen(COMMAND, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if any(p not in before and (repo / p).exists() for p in OUTPUTS):
                os.killpg(proc.pid, signal.SIGKILL)
                return True
            time.sleep(0.002)
        return False
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def incomplete_outputs(repo: Path) -> list[str]:
    """Outputs that exist and that Snakemake's .snakemake/incomplete/ marks as unfinished."""
    markers = repo / ".snakemake" / "incomplete"
    found = []
    for marker in markers.rglob("*") if markers.exists() else []:
        if marker.is_file() and marker.name != "migration_underway":
            parts = marker.relative_to(markers).parts  # a long key is split into folders named "@..."
            key = base64.urlsafe_b64decode("".join(p.lstrip("@") for p in parts)).decode()
            if (repo / key).exists():
                found.append(key)
    return found


def uninterrupted(root: Path) -> Path:
    """The same runs trained and evaluated by hand, in-process, under ``root`` laid out as results/."""
    cfg = deep_update(load_config(SMOKE), yaml.safe_load(SMALL))
    mixture = experiment("mixture")
    plan, settings = mixture.plan(cfg), json.dumps(mixture.settings(cfg))
    for run_dir in RUNS:
        out = root / run_dir
        spec = json.dumps(plan[run_dir.removeprefix("results/smoke/mixture/")])
        assert ali(["train", "--spec", spec, "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
        assert ali(["evaluate", "--run-dir", str(out), "--settings", settings, "--device", "cpu"]) == 0
    return root


def numbers(repo: Path) -> list[dict]:
    """Each run's record and metrics, less where and when they were made."""
    out = []
    for path in OUTPUTS:
        data = json.loads((repo / path).read_text())
        out.append({k: v for k, v in data.items() if k not in VOLATILE})
    return out


@pytest.mark.slow
def test_the_same_command_finishes_after_a_kill_of_the_whole_process_group(tmp_path):
    repo = small_workdir(tmp_path / "killed")
    trapped = []
    for _ in OUTPUTS:  # each attempt kills at the next output; one that lands before Snakemake records it
        if not kill_when_an_output_appears(repo):
            break
        trapped = incomplete_outputs(repo)
        if trapped:
            break
    assert trapped, "no kill landed between a job writing its output and Snakemake recording it"

    res = run(repo)  # the very same command
    text = output(res)
    assert res.returncode == 0, text[-3000:]
    assert "IncompleteFilesException" not in text
    assert incomplete_outputs(repo) == []
    assert numbers(repo) == numbers(uninterrupted(tmp_path / "reference"))
