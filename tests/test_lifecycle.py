"""The run lifecycle's guarantees (ali/train/), on CPU with tiny mixture runs.

- A checkpoint from another device kind, or whose RNG state has another device's size, is one clear
  CheckpointError and nothing is restored (never a raw RuntimeError, never a half-restored state).
- A write that fails part-way (a full disk) or is killed between write and rename leaves the
  previous checkpoint loadable, and the resumed run ends as an uninterrupted one.
- An unreadable checkpoint is one line in the suite's words, with PyTorch's detail as __cause__;
  a single run's message never says "group".
- ``cuda:N`` becomes the current CUDA device; the graph runner says captured only after a replay;
  the mixture baselines get their spec's precision and capture.
"""

from __future__ import annotations

import copy
import errno
import os
from pathlib import Path

import conftest
import pytest
import torch

import ali.train.files as files_mod
from ali.config import load_config
from ali.experiments import mixture as mx
from ali.train import runtime
from ali.train.checkpoint import CHECKPOINT, CheckpointError, read_checkpoint
from ali.train.files import atomic_write
from ali.train.graph import StepRunner

PLAN = mx.plan(load_config(conftest.SMOKE))
CPU = torch.device("cpu")


def tiny(model: str, steps: int = 20, run: int = 0) -> dict:
    spec = copy.deepcopy(PLAN[f"fixed/{model}/run{run}"])
    spec["nets"].update(gen_hidden=16, disc_hidden=8)
    spec["data"].update(n_train=400, n_heldout=100)
    spec["steps"] = steps
    return spec


def solo(spec: dict, run_dir: Path, **kw) -> dict:
    """The VAE baseline trains in the solo loop."""
    kw = {"device": "cpu", "progress": False, "checkpoint_every": 5, "log_every": 5, **kw}
    return mx.train_run(spec, run_dir, **kw)


def group(specs: list[dict], root: Path, **kw) -> list[dict]:
    kw = {"device": "cpu", "progress": False, "checkpoint_every": 5, "log_every": 5, "eval_every": 10, **kw}
    return mx.train_batched(specs, [root / mx.run_key(s) for s in specs], **kw)


def weights(record: dict) -> dict:
    return torch.load(Path(record["run_dir"]) / mx.MODEL_FILE, map_location="cpu", weights_only=True)


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def rewrite(path: Path, change) -> None:
    """Load a checkpoint, let ``change`` edit it, save it back (what another machine would have written)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    change(ckpt)
    torch.save(ckpt, path)


# ------------------------------------------------------------------------ foreign-device checkpoints
def test_a_cuda_checkpoint_resumed_on_cpu_is_one_clear_error(tmp_path):
    spec = tiny("vae")
    with pytest.raises(KeyboardInterrupt):
        solo(spec, tmp_path, stop_at=7)
    path = tmp_path / CHECKPOINT
    rewrite(path, lambda c: c.update(device="cuda"))
    with pytest.raises(CheckpointError) as err:
        solo(spec, tmp_path)
    msg = str(err.value)
    assert str(path) in msg and "written by a cuda run" in msg and "--device cuda" in msg and "\n" not in msg


def test_a_group_checkpoint_whose_state_does_not_fit_is_refused_before_anything_is_restored(tmp_path):
    # (Was: a CUDA-sized generator state. The engine's noise is now a function of (seed, step), so a group
    # checkpoint holds no generator; the same guard is tested on a tensor of another group's size.)
    specs = [tiny("ali", run=0), tiny("ali", run=1)]
    with pytest.raises(KeyboardInterrupt):
        group(specs, tmp_path, stop_at=7)
    path = tmp_path / mx.run_key(specs[0]) / CHECKPOINT

    def three_runs(ckpt):  # the alive mask of a group of 3
        ckpt["state"]["group"]["alive"] = torch.ones(3, dtype=torch.bool)
    rewrite(path, three_runs)

    loaded = []
    original = mx.lifecycle_group.GroupRun.load_state_dict
    try:
        mx.lifecycle_group.GroupRun.load_state_dict = lambda self, state: loaded.append(state)
        with pytest.raises(CheckpointError, match=r"does not fit this run \(group\.alive: saved \(3,\)"):
            group(specs, tmp_path)
    finally:
        mx.lifecycle_group.GroupRun.load_state_dict = original
    assert loaded == []  # refused before any of the state was copied in


def test_a_checkpoint_missing_part_of_the_state_is_a_checkpoint_error(tmp_path):
    spec = tiny("vae")
    with pytest.raises(KeyboardInterrupt):
        solo(spec, tmp_path, stop_at=7)
    rewrite(tmp_path / CHECKPOINT, lambda c: c["state"].pop("optimizers"))
    with pytest.raises(CheckpointError, match=r"does not fit this run \(KeyError\); delete it"):
        solo(spec, tmp_path)


# ------------------------------------------------------------------------ full disk, kill mid-write
def test_a_full_disk_part_way_through_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    spec = tiny("vae")
    full = solo(spec, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        solo(spec, tmp_path / "run", stop_at=5)  # checkpoint at step 5
    real_save, saves = torch.save, []

    def half_then_enospc(obj, f, *args, **kw):
        saves.append(1)
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", half_then_enospc)
    with pytest.raises(OSError, match="No space left"):
        solo(spec, tmp_path / "run")  # fails writing step 10's checkpoint
    monkeypatch.setattr(torch, "save", real_save)
    assert saves == [1]
    assert read_checkpoint(tmp_path / "run" / CHECKPOINT, owner=full["config_hash"], device=CPU)["step"] == 5
    assert [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")] == []
    resumed = solo(spec, tmp_path / "run")
    assert resumed["resumed_from_step"] == 5
    assert_same(weights(resumed), weights(full))


def test_a_kill_between_write_and_rename_keeps_the_previous_group_checkpoint(tmp_path, monkeypatch):
    specs = [tiny("gan", run=0), tiny("gan", run=1)]
    full = group(specs, tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        group(specs, tmp_path / "run", stop_at=5)
    written, real_replace = [], os.replace

    def killed(src, dst):  # the new checkpoint is complete and flushed; the process dies before the rename
        if Path(dst).name != CHECKPOINT:
            return real_replace(src, dst)
        written.append(Path(src).stat().st_size)
        raise KeyboardInterrupt("killed between write and rename")

    monkeypatch.setattr(files_mod.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt, match="between write and rename"):
        group(specs, tmp_path / "run")
    monkeypatch.setattr(files_mod.os, "replace", real_replace)
    assert written and written[0] > 0
    resumed = group(specs, tmp_path / "run")
    assert [r["resumed_from_step"] for r in resumed] == [5, 5]
    for a, b in zip(resumed, full):
        assert_same(weights(a), weights(b))


def test_atomic_write_leaves_the_old_file_and_no_temporary_on_failure(tmp_path):
    path = tmp_path / "record.json"
    path.write_text("old")

    def fail(f):
        f.write(b"new, half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(path, fail)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_text() == "new"


# ----------------------------------------------------------------------------- unreadable checkpoints
@pytest.mark.parametrize("kind", ["solo", "group of 1"])
def test_an_unreadable_checkpoint_is_one_line_in_the_suites_words(tmp_path, kind):
    spec = tiny("vae" if kind == "solo" else "ali")
    train = solo if kind == "solo" else (lambda s, d, **kw: group([s], d, **kw)[0])
    run_dir = tmp_path if kind == "solo" else tmp_path / mx.run_key(spec)
    with pytest.raises(KeyboardInterrupt):
        train(spec, tmp_path, stop_at=7)
    path = run_dir / CHECKPOINT
    path.write_bytes(path.read_bytes()[:100])  # truncated
    with pytest.raises(CheckpointError) as err:
        train(spec, tmp_path)
    assert str(err.value) == (f"checkpoint {path} is unreadable: truncated or not a checkpoint of this suite; "
                              f"delete it to restart this run from step 0")
    assert err.value.__cause__ is not None  # the library's own words stay available


# ------------------------------------------------------------------------------ device, capture record
def test_cuda_n_becomes_the_current_device(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert runtime.resolve_device("cuda:1") == torch.device("cuda", 1)
    assert runtime.resolve_device("cuda") == torch.device("cuda", 0)
    assert chosen == [torch.device("cuda", 1), torch.device("cuda", 0)]
    assert runtime.resolve_device("cpu") == CPU and len(chosen) == 2


def test_the_runner_says_captured_only_after_a_replay():
    runner = StepRunner(lambda inputs: None, capture=True, snapshot=dict, restore=lambda saved: None, label="group-")
    assert runner.engine == "group-eager"  # asked to capture, but no step has run


def test_the_mixture_baselines_take_their_specs_precision_and_capture(tmp_path):
    spec = {**tiny("vae"), "precision": "bf16", "capture": "off"}
    options = mx.build(spec).options
    assert (options.precision, options.capture) == ("bf16", "off")
    with pytest.raises(ValueError, match="config key 'mixture.precision' is 'bf16', which needs a CUDA device"):
        solo(spec, tmp_path)
