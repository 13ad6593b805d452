"""Checkpoints that load without unpickling code, resume that still ends bit for bit, the training
curve (history.csv) across a kill, and the K+1 labelled stream as a pure function of (seed, step).

Models are the tiny image architecture of tests/tiny_images.py; the mixture's resume tests live in
tests/test_train.py.
"""

from __future__ import annotations

import csv
import math
import random

import numpy as np
import pytest
import torch

from ali.train.progress import HISTORY
from ali.models.base import AdamKernel
from ali.train.checkpoint import CHECKPOINT, rng_state, set_rng_state
from ali.train.loop import load_run_checkpoint, save_run_checkpoint, train
from tiny_images import (BATCH, N_LABELLED, assert_same_training_state, build, history_losses, register_tiny_arch,
                         run_loop, tiny_data, tiny_spec)

PLAIN = (torch.Tensor, int, float, str, bool, type(None))


@pytest.fixture(autouse=True)
def _tiny_arch(monkeypatch):
    register_tiny_arch(monkeypatch)


def leaves(obj, path="ckpt"):
    """Every (path, value) at the leaves of nested dicts, lists and tuples."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaves(v, f"{path}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, obj


# ------------------------------------------------------------------------------------ the file
def test_a_loop_checkpoint_loads_with_weights_only_and_holds_only_tensors_and_numbers(tmp_path):
    spec, data = tiny_spec("ali_kplus1"), tiny_data()
    with pytest.raises(KeyboardInterrupt):
        run_loop(spec, tmp_path, data, checkpoint_every=5, stop_at=7)
    ckpt = torch.load(tmp_path / CHECKPOINT, map_location="cpu", weights_only=True)
    assert ckpt["step"] == 5 and set(ckpt["rng"]) >= {"torch", "numpy", "python"}
    odd = [(p, type(v).__name__) for p, v in leaves(ckpt) if not isinstance(v, PLAIN)]
    assert odd == []
    assert ckpt["rng"]["numpy"]["key"].shape == (624,) and ckpt["rng"]["python"]["state"].shape == (625,)


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path):
    torch.manual_seed(3)
    np.random.seed(4)
    random.seed(5)
    np.random.standard_normal(3)  # an odd count leaves numpy's cached Gaussian set
    random.gauss(0.0, 1.0)  # and python's gauss_next
    saved = rng_state(torch.device("cpu"))
    path = tmp_path / "rng.pt"
    torch.save(saved, path)

    def draws():
        return (torch.rand(4).tolist(), np.random.standard_normal(3).tolist(), np.random.randint(0, 10**9, 3).tolist(),
                [random.random() for _ in range(3)], random.gauss(0.0, 1.0))

    first = draws()
    draws()  # move every generator on
    set_rng_state(torch.load(path, weights_only=True), torch.device("cpu"))
    assert draws() == first


# ------------------------------------------------------------------------------ kill and resume
@pytest.mark.parametrize("model", ["vae", "ali_kplus1"])
def test_kill_and_resume_ends_bit_for_bit_with_the_same_history(tmp_path, model):
    """Checkpoints every 5 steps, a history row every 3: the kill at step 13 leaves rows 3-12 and the
    checkpoint of step 10, so the resume must drop row 12 and write it again."""
    spec, data = tiny_spec(model, steps=20), tiny_data()
    full, full_result = run_loop(spec, tmp_path / "full", data, checkpoint_every=5, log_every=3)
    with pytest.raises(KeyboardInterrupt):
        run_loop(spec, tmp_path / "killed", data, checkpoint_every=5, log_every=3, stop_at=13)
    assert [r["step"] for r in history_losses(tmp_path / "killed")] == ["3", "6", "9", "12"]
    resumed, result = run_loop(spec, tmp_path / "killed", data, checkpoint_every=5, log_every=3)
    assert result.resumed_from_step == 10 and result.steps_done == 20
    assert_same_training_state(resumed, full)
    assert result.final_losses == full_result.final_losses
    rows = history_losses(tmp_path / "killed")
    assert rows == history_losses(tmp_path / "full")
    assert [r["step"] for r in rows] == ["3", "6", "9", "12", "15", "18", "20"]


def test_history_columns_and_values(tmp_path):
    spec, data = tiny_spec("gan", steps=6), tiny_data()
    _, result = run_loop(spec, tmp_path, data, log_every=2)
    with open(tmp_path / HISTORY, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames == ["step", "wall_s", "loss_d", "loss_g"]
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    walls = [float(r["wall_s"]) for r in rows]
    assert walls == sorted(walls) and walls[0] >= 0
    assert {k: float(rows[-1][k]) for k in ("loss_d", "loss_g")} == result.final_losses  # the averaged losses


def test_a_diverged_run_ends_its_history_with_the_nonfinite_row(tmp_path, monkeypatch):
    spec, data = tiny_spec("vae", steps=20), tiny_data()
    model = build(spec, data)
    original, calls = type(model).train_step, {"n": 0}

    def nan_from_step_5(self, x, **inputs):
        calls["n"] += 1
        out = original(self, x, **inputs)
        return {k: v * float("nan") for k, v in out.items()} if calls["n"] >= 5 else out

    monkeypatch.setattr(type(model), "train_step", nan_from_step_5)
    result = train(model, data, steps=20, batch_size=BATCH, seed=0, run_dir=tmp_path, run_hash="h",
                   checkpoint_every=100, log_every=3, progress=False)
    assert result.diverged and result.diverged_by_step == 6
    rows = history_losses(tmp_path)
    assert [r["step"] for r in rows] == ["3", "6"]
    assert math.isfinite(float(rows[0]["loss"])) and math.isnan(float(rows[1]["loss"]))


# ------------------------------------------------------------------------ optimisers in checkpoints
def test_a_checkpoint_keeps_the_resuming_models_adam_kernel_and_rate_tensor(tmp_path):
    """A CPU run's checkpoint resumed by a fused, capturable Adam (a GPU run): the saved moments and
    rate arrive, the kernel flags and the rate tensor stay the resuming model's own."""
    spec, data = tiny_spec("gan_fm", steps=3), tiny_data()
    cpu = build(spec, data).train()
    for step in range(3):
        cpu.on_step(step)
        cpu.train_step(data[:BATCH].float() / 255.0, **cpu.step_inputs(step))
    cpu.on_step(40)  # far into the decay: a rate the resuming model must receive
    save_run_checkpoint(tmp_path / CHECKPOINT, cpu, 3, 1.0, "h")

    gpu_like = build(spec, data)
    gpu_like.use_adam_kernel(AdamKernel(fused=True, capturable=True))
    rate_tensors = {name: [g["lr"] for g in opt.param_groups] for name, opt in gpu_like.optimizers.items()}
    assert load_run_checkpoint(tmp_path / CHECKPOINT, gpu_like, "h") == (3, 1.0)
    for name, opt in gpu_like.optimizers.items():
        saved = cpu.optimizers[name]
        for group, tensor, saved_group in zip(opt.param_groups, rate_tensors[name], saved.param_groups):
            assert group["fused"] is True and group["capturable"] is True and group["lr"] is tensor
            assert float(tensor) == pytest.approx(saved_group["lr"], rel=1e-6)
        for p, saved_p in zip(opt.param_groups[0]["params"], saved.param_groups[0]["params"]):
            state, saved_state = opt.state[p], saved.state[saved_p]
            assert state["step"].dtype == torch.float32 and float(state["step"]) == 3.0
            assert torch.equal(state["exp_avg"], saved_state["exp_avg"])


# ----------------------------------------------------------------------------- K+1 labelled stream
def expected_labelled_rows(seed: int, n: int, batch: int, step: int) -> list[int]:
    """improved-gan's tiling written out: the concatenated permutations of the labelled set, one per
    pass, each seeded by (seed, pass); batch ``step`` is the slice [step * batch, (step + 1) * batch)."""
    passes = (step + 1) * batch // n + 1
    stream = torch.cat([torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7_919 + k))
                        for k in range(passes)])
    return stream[step * batch:(step + 1) * batch].tolist()


@pytest.mark.parametrize("model_name", ["gan_fm", "ali_kplus1"])
def test_labelled_batch_is_a_pure_function_of_seed_and_step_and_follows_the_stream(model_name):
    data = tiny_data()
    data[:N_LABELLED] = torch.arange(N_LABELLED, dtype=torch.uint8).view(-1, 1, 1, 1)  # pixel = row index
    for seed in (0, 3):
        spec = tiny_spec(model_name, seed=seed)
        a, b = build(spec, data), build(spec, data)
        b.on_step(99)  # state another model object might carry: irrelevant
        for step in (0, 1, 2, 7, 30):  # batches of 8 from 20 rows: several cross a pass boundary
            torch.manual_seed(step)  # the global RNG is irrelevant too
            x, y = a.step_inputs(step)["x_lab"], a.step_inputs(step)["y_lab"]
            rows = (x[:, 0, 0, 0] * 255).round().long().tolist()
            assert rows == expected_labelled_rows(seed, N_LABELLED, BATCH, step) == a.labelled_indices(step).tolist()
            assert y.tolist() == [r % spec["n_classes"] for r in rows]
            x_b, y_b = b.labelled_batch(step)
            assert torch.equal(x, x_b) and torch.equal(y, y_b)
            a.on_step(step)  # the older calling convention: the batch of the step given to on_step
            assert torch.equal(a.labelled_batch()[0], x)
