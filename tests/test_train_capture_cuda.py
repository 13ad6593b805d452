"""CUDA-graph capture of the solo loop's step, on a GPU (skipped without one; tests/test_train_capture.py
checks on CPU what capture relies on).

- auto captures on CUDA, and the captured run trains the same model as the eager one (same fused
  Adam, same noise: the graph draws from the default generator at the offsets eager steps would);
- a killed and resumed captured run ends bit for bit where the uninterrupted one does (the
  checkpoint's CUDA RNG state includes the replays' offsets; warm-up and capture leave no trace);
- tf32 and bf16 train and are recorded.
cuDNN runs in deterministic mode here so that equal inputs give equal outputs.
"""

from __future__ import annotations

import pytest
import torch

from tiny_images import assert_same_training_state, history_losses, register_tiny_arch, run_loop, tiny_data, tiny_spec

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
MODELS = ("ali", "vae", "ali_kplus1")


@pytest.fixture(autouse=True)
def _tiny_arch_deterministic_cudnn(monkeypatch):
    register_tiny_arch(monkeypatch)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)


def cuda_run(spec, run_dir, **kw):
    return run_loop(spec, run_dir, tiny_data().cuda(), **kw)


@pytest.mark.parametrize("model", MODELS)
def test_captured_run_equals_the_eager_run(tmp_path, model):
    eager, eager_result = cuda_run(tiny_spec(model, capture="off"), tmp_path / "eager")
    captured, captured_result = cuda_run(tiny_spec(model, capture="auto"), tmp_path / "captured")
    assert eager_result.engine == "eager" and captured_result.engine == "captured"
    assert all(g["fused"] for m in (eager, captured) for o in m.optimizers.values() for g in o.param_groups)
    assert_same_training_state(captured, eager)
    assert history_losses(tmp_path / "captured") == history_losses(tmp_path / "eager")


@pytest.mark.parametrize("model", MODELS)
def test_killed_captured_run_resumes_bit_for_bit(tmp_path, model):
    spec = tiny_spec(model, capture="on")
    full, _ = cuda_run(spec, tmp_path / "full", checkpoint_every=5, log_every=3)
    with pytest.raises(KeyboardInterrupt):
        cuda_run(spec, tmp_path / "killed", checkpoint_every=5, log_every=3, stop_at=13)
    resumed, result = cuda_run(spec, tmp_path / "killed", checkpoint_every=5, log_every=3)
    assert result.resumed_from_step == 10 and result.engine == "captured"
    assert_same_training_state(resumed, full)
    assert history_losses(tmp_path / "killed") == history_losses(tmp_path / "full")


@pytest.mark.parametrize("precision,channels_last", [("tf32", False), ("bf16", False), ("bf16", True)])
def test_reduced_precisions_train_captured_and_are_recorded(tmp_path, precision, channels_last):
    spec = tiny_spec("ali_kplus1", precision=precision, channels_last=channels_last)
    model, result = cuda_run(spec, tmp_path)
    assert (result.engine, result.precision, result.channels_last) == ("captured", precision, channels_last)
    assert all(torch.isfinite(torch.tensor(v)) for v in result.final_losses.values())
    assert all(torch.isfinite(p).all() for p in model.parameters())
