"""Faults lose nothing (issue 18): a full disk part-way through any result file, a cluster's
preemption signal, SIGKILL at random moments, and bad files met with one line.

- A result writer (metrics.json, a table's CSV, record.json, a figure) hit by ENOSPC part-way leaves
  the previous file as it was and no temporary file; the next write removes a killed writer's.
- SIGTERM or SIGUSR1 to a real ``python -m ali train`` (a group, a solo run): a checkpoint at the
  step boundary, exit status 75, and the rerun ends bit-identical (CPU) to an uninterrupted run;
  before any loop the signal stops the job at once; the previous handlers come back.
- SIGKILL at three seeded random moments of a grouped job, each resumed: the same bits at the end.
- A corrupt checkpoint, record, metrics, weights, features, curve, config, dataset, measured rates
  or --spec is one line naming the file (or option) and the fix, never advising ``weights_only=False``.
"""

from __future__ import annotations

import copy
import errno
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import conftest
import pandas as pd
import pytest
import torch

import ali.train.files as files_mod
from ali.cli import main
from ali.config import load_config
from ali.data import images
from ali.data.catalog import DatasetMissingError
from ali.experiments import mixture as mx
from ali.experiments import rows, svm
from ali.experiments.base import write_csv, write_json
from ali.report import curves
from ali.train.checkpoint import CHECKPOINT
from ali.train.files import UnusableFileError
from ali.train.preempt import PREEMPTED_EXIT, STOP, Preempted, stop_on_signals
from ali.train.progress import HISTORY, History
from ali.train.record import MODEL_FILE, RECORD, write_record

PLAN = mx.plan(load_config(conftest.SMOKE))


def tiny(model: str, steps: int, run: int = 0) -> dict:
    spec = copy.deepcopy(PLAN[f"fixed/{model}/run{run}"])
    spec["nets"].update(gen_hidden=16, disc_hidden=8)
    spec["data"].update(n_train=400, n_heldout=100)
    spec["steps"] = steps
    return spec


# ------------------------------------------------------------------------ a full disk, any writer
class HalfThenFull:
    """A file that takes half of the first write, then says the disk is full."""

    def __init__(self, f):
        self.f = f

    def write(self, data) -> int:
        self.f.write(bytes(data)[: max(1, len(data) // 2)])
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def png(path: Path) -> None:
    from ali.report.image_figures import _save

    _save(torch.rand(4, 3, 8, 8), path, nrow=2)


WRITERS = {
    "metrics.json": lambda p: write_json(p, {"modes": 25}),
    "mixture.csv": lambda p: write_csv(pd.DataFrame({"model": ["ali"], "modes": [25]}), p),
    "record.json": lambda p: write_record(p.parent, {"status": "ok"}),
    "samples.png": png,
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_a_full_disk_part_way_through_a_result_keeps_the_previous_file(tmp_path, monkeypatch, name):
    path = tmp_path / name
    WRITERS[name](path)
    before = path.read_bytes()
    real_open = open
    monkeypatch.setattr(files_mod, "open", lambda p, mode="r", *a, **kw: HalfThenFull(real_open(p, mode, *a, **kw)),
                        raising=False)
    with pytest.raises(OSError, match="No space left"):
        WRITERS[name](path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left behind


def test_a_history_row_cut_short_is_dropped_on_resume(tmp_path):
    path = tmp_path / HISTORY
    path.write_text("step,wall_s,loss\n5,0.1,1.0\n10,0.2,2.0\n1")  # a kill (or ENOSPC) in the middle of row 15
    History(path, ["loss"], resume_step=10)
    assert path.read_text() == "step,wall_s,loss\n5,0.1,1.0\n10,0.2,2.0\n"


# ------------------------------------------------------------------------------------------ preemption
def test_stop_on_signals_restores_the_previous_handlers():
    mine = lambda signum, frame: None  # noqa: E731
    before = signal.signal(signal.SIGUSR1, mine)
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGUSR1) == STOP.handle == signal.getsignal(signal.SIGTERM)
            STOP.defer()
            signal.raise_signal(signal.SIGUSR1)
            assert STOP.signum == signal.SIGUSR1
        assert signal.getsignal(signal.SIGUSR1) is mine and STOP.signum is None and not STOP.deferring
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGUSR1, before)


def train_command(specs: list[dict], run_dirs: list[Path], checkpoint_every: int) -> list[str]:
    return [sys.executable, "-m", "ali", "train", "--spec", json.dumps(specs), "--out", *map(str, run_dirs),
            "--device", "cpu", "--log-every", "10", "--checkpoint-every", str(checkpoint_every)]


def run_until(command: list[str], step: int, sig: int) -> tuple[subprocess.Popen, str]:
    """Start ``command``; once its progress line says ``step`` (or more), send ``sig``. Its stderr."""
    proc = subprocess.Popen(command, cwd=conftest.REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "] step " in line and int(line.split("] step ")[1].split("/")[0]) >= step:
            proc.send_signal(sig)
            break
    seen += proc.stderr.readlines()
    proc.wait(timeout=60)
    return proc, "".join(seen)


def finished(run_dirs: list[Path]) -> list[tuple[bytes, pd.DataFrame]]:
    """What must be bit-identical: each run's model.pt and its curve without the wall clock."""
    return [((d / MODEL_FILE).read_bytes(), pd.read_csv(d / HISTORY).drop(columns="wall_s")) for d in run_dirs]


def assert_same_runs(a: list[Path], b: list[Path]) -> None:
    for (weights_a, curve_a), (weights_b, curve_b) in zip(finished(a), finished(b), strict=True):
        assert weights_a == weights_b
        pd.testing.assert_frame_equal(curve_a, curve_b)


@pytest.mark.slow
@pytest.mark.parametrize("sig, models", [(signal.SIGTERM, ("ali", "ali")), (signal.SIGUSR1, ("vae",))],
                         ids=["SIGTERM-group", "SIGUSR1-solo"])
def test_a_preempted_training_job_checkpoints_exits_75_and_resumes_bit_identically(tmp_path, sig, models):
    specs = [tiny(m, steps=1000, run=r) for r, m in enumerate(models)]
    ref = [tmp_path / "ref" / f"run{r}" for r in range(len(specs))]
    assert main(train_command(specs, ref, 100_000)[3:] + ["--no-progress"]) == 0  # in-process: no second import
    dirs = [tmp_path / "job" / f"run{r}" for r in range(len(specs))]
    proc, err = run_until(train_command(specs, dirs, 100_000), 100, sig)
    assert proc.returncode == PREEMPTED_EXIT, err
    stop = [line for line in err.splitlines() if line.startswith("preempted:")]
    assert len(stop) == 1 and signal.Signals(sig).name in stop[0] and "Traceback" not in err
    ckpt = torch.load(dirs[0] / CHECKPOINT, map_location="cpu", weights_only=True)
    assert 100 <= ckpt["step"] < 1000 and f"after step {ckpt['step']};" in stop[0]
    assert not (dirs[0] / MODEL_FILE).exists()
    resumed = subprocess.run(train_command(specs, dirs, 100_000), cwd=conftest.REPO, capture_output=True, text=True,
                             timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((dirs[0] / RECORD).read_text())["resumed_from_step"] == ckpt["step"]
    assert_same_runs(dirs, ref)


# --------------------------------------------------------------------------------- random SIGKILLs
@pytest.mark.slow
def test_sigkill_at_seeded_random_moments_then_resume_ends_as_the_uninterrupted_group(tmp_path):
    specs = [tiny("ali", steps=800, run=0), tiny("ali", steps=800, run=1)]
    ref = [tmp_path / "ref" / f"run{r}" for r in range(2)]
    assert main(train_command(specs, ref, 50)[3:] + ["--no-progress"]) == 0
    dirs = [tmp_path / "job" / f"run{r}" for r in range(2)]
    moments = sorted(random.Random(18).sample(range(60, 640), 3))  # past a first checkpoint, short of the end
    resumed_from = []
    for moment in moments:
        proc, err = run_until(train_command(specs, dirs, 50), moment, signal.SIGKILL)
        assert proc.returncode == -signal.SIGKILL, err
        resumed_from.append(torch.load(dirs[0] / CHECKPOINT, map_location="cpu", weights_only=True)["step"])
    done = subprocess.run(train_command(specs, dirs, 50), cwd=conftest.REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert resumed_from == sorted(resumed_from) and resumed_from[0] >= 50
    assert_same_runs(dirs, ref)
    assert not [p for d in dirs for p in d.iterdir() if p.name.endswith(".tmp")]  # no half file of a killed write


# -------------------------------------------------------------------------------- bad files: one line
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished tiny solo run with metrics, to corrupt one file of at a time."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    mx.train_run(tiny("vae", steps=10), run_dir, device="cpu", progress=False, checkpoint_every=5, log_every=5)
    write_json(run_dir / mx.METRICS, {"modes": 1})
    return run_dir


def fresh(trained: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for f in trained.iterdir():
        (run_dir / f.name).write_bytes(f.read_bytes())
    return run_dir


def truncate(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    return path


def cli_line(argv: list[str], capsys) -> str:
    """The one line ``ali`` prints for a bad file, after checking it exits 2 with nothing else."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def bad_checkpoint(run_dir: Path, capsys):
    path = truncate(run_dir / CHECKPOINT)
    spec = json.loads((run_dir / RECORD).read_text())["spec"]
    return path, cli_line(["train", "--spec", json.dumps(spec), "--out", str(run_dir), "--device", "cpu",
                           "--no-progress"], capsys)


def bad_record(run_dir: Path, capsys):
    return truncate(run_dir / RECORD), cli_line(["evaluate", "--run-dir", str(run_dir), "--device", "cpu"], capsys)


def bad_config(run_dir: Path, capsys):
    path = run_dir / "preset.yaml"
    path.write_text("preset: mine\nmixture:\n  train: {epochs: 1\n")
    return path, cli_line(["plan", "--configfile", str(path)], capsys)


def raised(error: type[Exception], path: Path, call) -> tuple[Path, str]:
    with pytest.raises(error) as err:
        call()
    return path, str(err.value)


def bad_metrics(run_dir: Path, capsys):
    return raised(UnusableFileError, truncate(run_dir / mx.METRICS), lambda: rows.run_rows(run_dir))


def bad_weights(run_dir: Path, capsys):
    return raised(UnusableFileError, truncate(run_dir / MODEL_FILE), lambda: mx.load_trained(run_dir))


def bad_features(run_dir: Path, capsys):
    path = run_dir / "features.pt"
    torch.save({"pool": torch.zeros(2)}, path)  # a tensor file, not a features file
    return raised(UnusableFileError, path, lambda: svm.run_trials(path, {}, device="cpu"))


def bad_curve(run_dir: Path, capsys):
    path = run_dir / HISTORY
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    return raised(UnusableFileError, path, lambda: curves.read_history(run_dir))


def bad_dataset(run_dir: Path, capsys):
    path = run_dir / "svhn" / "test_32x32.mat"
    path.parent.mkdir()
    path.write_bytes(b"MATLAB 5.0, cut short")
    path, message = raised(DatasetMissingError, path, lambda: images.check("svhn", "test", run_dir))
    return path.parent.parent, message.splitlines()[0] + " " + message.splitlines()[-1]  # the summary, the fix


def bad_rates(run_dir: Path, capsys):
    from ali.cost import measured_rates

    path = run_dir / "rates" / "h200.json"
    path.parent.mkdir()
    path.write_text('{"kind": "cuda", "rates": [')
    return raised(UnusableFileError, path, lambda: measured_rates(path.parent))


BAD = {"checkpoint": bad_checkpoint, "record": bad_record, "config": bad_config, "metrics": bad_metrics,
       "weights": bad_weights, "svm features": bad_features, "curve": bad_curve, "dataset": bad_dataset,
       "measured rates": bad_rates}
FIXES = ("delete", "fix", "rerun", "ali download")


@pytest.mark.parametrize("kind", list(BAD))
def test_a_bad_file_is_one_line_naming_it_and_the_fix(trained, tmp_path, capsys, kind):
    path, message = BAD[kind](fresh(trained, tmp_path), capsys)
    line = message.removeprefix("error: ").rstrip("\n")
    assert "\n" not in line and str(path) in line, line
    assert any(fix in line for fix in FIXES), line
    assert "weights_only" not in line and "Traceback" not in line


def test_a_spec_that_is_not_json_is_one_line(tmp_path):
    with pytest.raises(SystemExit) as err:
        main(["train", "--spec", '{"seed": 1', "--out", str(tmp_path)])
    assert str(err.value).startswith("error: --spec is not valid JSON") and "\n" not in str(err.value)


def test_verbose_adds_the_librarys_report_below_the_one_line(trained, tmp_path, capsys):
    run_dir = fresh(trained, tmp_path)
    truncate(run_dir / RECORD)
    assert main(["--verbose", "evaluate", "--run-dir", str(run_dir), "--device", "cpu"]) == 2
    first, *rest = capsys.readouterr().err.splitlines()
    assert first.startswith(f"error: record {run_dir / RECORD} is unreadable") and "JSONDecodeError" in "\n".join(rest)


def test_a_stop_signal_before_any_training_loop_stops_at_once_and_inside_one_waits():
    with stop_on_signals():
        with pytest.raises(Preempted, match="before training started"):
            signal.raise_signal(signal.SIGTERM)  # building, loading data: nothing to save
        STOP.defer()  # what the loop driver does as it starts
        signal.raise_signal(signal.SIGTERM)
        assert STOP.signum == signal.SIGTERM


def test_the_next_write_removes_a_killed_writers_temporary_file(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = tmp_path / f".checkpoint.pt.{int(dead.stdout)}.0badc0de.tmp"  # what SIGKILL mid-write leaves
    alive = tmp_path / f".checkpoint.pt.{os.getpid()}.0badc0de.tmp"  # a writer still running: never touched
    left.write_bytes(b"half"), alive.write_bytes(b"half")
    files_mod.atomic_write(tmp_path / CHECKPOINT, lambda f: f.write(b"whole"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([CHECKPOINT, alive.name])
