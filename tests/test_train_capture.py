"""The solo loop's step engines and step options (ali/train/graph.py, ali/train/loop.py), on CPU.

CUDA graphs cannot run here, so these tests check what capture relies on, with torch.cuda's graph,
stream and synchronize calls replaced by fakes whose "capture" runs the step and whose replay runs
it again on the runner's fixed buffers:
- the captured path (warm-up, capture, restore, static buffers, replays) trains bit for bit like
  the plain call, for ALI, GAN, VAE and both K+1 models;
- a step reads no device value on the host and draws noise only from the default generator
  (a dispatch-mode probe that sees every aten op of forward, both gradients and fused Adam);
- a failed capture falls back to eager with one warning, the reason recorded, and leaves no trace
  of its warm-up steps;
- precision, layout and capture are named options with clear errors on CPU; the record says which
  precision, layout and engine trained a run.
Every model here is a tiny image architecture (8x8 images, tests/tiny_images.py) built through the
experiments' own build().
"""

from __future__ import annotations

import contextlib
import json
import warnings

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import ali.train.loop as loop_mod
from ali.data.batches import as_model_input, epoch_permutation
from ali.experiments import images as im
from ali.models.base import AdamKernel, StepOptions
from ali.train.graph import StepRunner
from ali.train.loop import SoloRun, run_training, train
from ali.train.record import RECORD
from ali.train.runtime import execution, fp32_math
from tiny_images import (BATCH, IMAGE_MODELS, KPLUS1_MODELS, N_DATA, assert_same_training_state, build,
                         history_losses, register_tiny_arch, run_loop, tiny_data, tiny_spec)


@pytest.fixture(autouse=True)
def _tiny_arch(monkeypatch):
    register_tiny_arch(monkeypatch)


# ------------------------------------------------------------------------ fake CUDA graphs on CPU
class FakeGraph:
    """torch.cuda.CUDAGraph for a CPU test: replay runs the runner's step on its buffers, into its outputs."""

    runner: StepRunner | None = None

    def register_generator_state(self, gen):
        pass

    def replay(self):
        out = FakeGraph.runner.step(FakeGraph.runner.buffers)
        for name, value in out.items():
            FakeGraph.runner.outputs[name].copy_(value)


class FakeStream:
    def wait_stream(self, other):
        pass


def fake_cuda_graphs(monkeypatch, capture_error: Exception | None = None) -> list[StepRunner]:
    """Replace torch.cuda's graph machinery; capture runs the body (the runner then restores the state)
    or raises ``capture_error``. Returns the runners made, as the loop makes them."""
    runners: list[StepRunner] = []

    @contextlib.contextmanager
    def graph(g):
        if capture_error is not None:
            raise capture_error
        yield

    class RecordingRunner(StepRunner):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            runners.append(self)
            FakeGraph.runner = self

    for name, fake in (("CUDAGraph", FakeGraph), ("graph", graph), ("Stream", FakeStream),
                       ("current_stream", FakeStream), ("stream", lambda s: contextlib.nullcontext()),
                       ("synchronize", lambda: None)):
        monkeypatch.setattr(torch.cuda, name, fake)
    monkeypatch.setattr(loop_mod, "StepRunner", RecordingRunner)
    return runners


def force_capture(monkeypatch) -> None:
    """The loop captures on CPU (capture is otherwise CUDA-only)."""
    monkeypatch.setattr(loop_mod, "execution", lambda *args: True)


# ------------------------------------------------------------------------ captured (fake) == plain
@pytest.mark.parametrize("model", IMAGE_MODELS + KPLUS1_MODELS)
def test_captured_step_trains_bit_for_bit_like_the_plain_step(tmp_path, monkeypatch, model):
    spec, data = tiny_spec(model), tiny_data()
    plain, plain_result = run_loop(spec, tmp_path / "plain", data)
    assert plain_result.engine == "eager"

    runners = fake_cuda_graphs(monkeypatch)
    force_capture(monkeypatch)
    captured, captured_result = run_loop(spec, tmp_path / "captured", data)
    assert captured_result.engine == "captured" and len(runners) == 1 and runners[0].replays == spec["steps"]
    noise = {"ali": {"eps", "z"}, "gan": {"z"}, "vae": {"eps"}, "gan_fm": {"z"}, "ali_kplus1": {"eps_lab", "eps", "z"}}
    expected_inputs = {"x"} | ({"x_lab", "y_lab"} if model in KPLUS1_MODELS else set()) | noise[model]
    assert set(runners[0].buffers) == expected_inputs
    assert_same_training_state(plain, captured)  # the warm-up steps left no trace
    assert history_losses(tmp_path / "plain") == history_losses(tmp_path / "captured")  # every step's losses
    assert len(history_losses(tmp_path / "plain")) == 20
    fresh = build(spec, data).state_dict()
    assert any(not torch.equal(v, fresh[k]) for k, v in captured.state_dict().items())  # it trained


def test_captured_step_refuses_inputs_other_than_the_first_steps(monkeypatch):
    spec, data = tiny_spec("ali"), tiny_data()
    fake_cuda_graphs(monkeypatch)
    solo = SoloRun(build(spec, data), data, batch_size=BATCH, seed=0, run_dir=None)
    runner = StepRunner(solo.step, capture=True, snapshot=solo.snapshot, restore=solo.restore)
    FakeGraph.runner = runner
    runner({"x": data[:BATCH].float()})
    with pytest.raises(KeyError, match="x_lab"):
        runner({"x": data[:BATCH].float(), "x_lab": data[:BATCH].float()})


# --------------------------------------------------------------------------------- capture hazards
HOST_READS = ("aten::_local_scalar_dense", "aten::nonzero", "aten::is_nonzero", "aten::_unique", "aten::unique",
              "aten::masked_select")


class CaptureHazards(TorchDispatchMode):
    """Records every aten op a CUDA graph could not hold: a device value read on the host (.item(),
    bool(), data-dependent shapes) or a random draw from a generator other than the default one."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func._schema.name
        if name.startswith(HOST_READS):
            self.found.append(name)
        if kwargs.get("generator") is not None:
            self.found.append(f"{name} on an explicit generator")
        return func(*args, **kwargs)


def test_the_hazard_probe_sees_host_reads_and_explicit_generators():
    with CaptureHazards() as probe:
        t = torch.ones(3)
        float(t.sum())
        torch.randperm(5, generator=torch.Generator().manual_seed(0))
        torch.randn(2)  # the default generator: fine
    assert probe.found == ["aten::_local_scalar_dense", "aten::randperm on an explicit generator"]


@pytest.mark.parametrize("model", IMAGE_MODELS + KPLUS1_MODELS)
def test_a_step_with_fused_adam_has_no_capture_hazard(model):
    """The whole step, with the fused Adam kernels CUDA uses (capturable Adam is CUDA-only)."""
    spec, data = tiny_spec(model), tiny_data()
    m = build(spec, data).train()
    m.use_adam_kernel(AdamKernel(fused=True))
    inputs = {"x": data[:BATCH].float() / 255.0, **m.step_inputs(3)}
    m.on_step(3)
    with CaptureHazards() as probe:
        for _ in range(2):  # the first step creates the optimiser state
            losses = m.train_step(**inputs)
    assert probe.found == []
    assert set(losses) == set(m.loss_names)


def test_the_old_k_plus_1_step_drew_its_labelled_batch_inside_the_step():
    """What the restructuring removed: without step inputs the labelled batch is drawn in the step."""
    spec, data = tiny_spec("gan_fm"), tiny_data()
    m = build(spec, data).train()
    m.on_step(3)
    with CaptureHazards() as probe:
        m.losses(data[:BATCH].float() / 255.0)
    assert "aten::randperm on an explicit generator" in probe.found


# ----------------------------------------------------------------------------- capture fallback
def test_failed_capture_falls_back_to_eager_with_one_warning_and_no_trace(tmp_path, monkeypatch):
    spec, data = tiny_spec("ali_kplus1"), tiny_data()
    reference, _ = run_loop(spec, tmp_path / "eager", data)

    fake_cuda_graphs(monkeypatch, RuntimeError("operation not permitted when stream is capturing\nmore CUDA detail"))
    model = build(spec, data).train()
    solo = SoloRun(model, data, batch_size=BATCH, seed=spec["seed"], run_dir=tmp_path)
    runner = StepRunner(solo.step, capture=True, snapshot=solo.snapshot, restore=solo.restore,
                        name="ali_kplus1 training step")
    fresh = build(spec, data)
    steps = []

    def step_zero_is_untouched(saved):  # called once, after the warm-up steps and the failed capture
        solo.restore(saved)
        steps.append(all(torch.equal(v, fresh.state_dict()[k]) for k, v in model.state_dict().items()))
        steps.append(all(s["step"] == 0 and not s["exp_avg"].any()
                         for opt in model.optimizers.values() for s in opt.state.values()))

    runner.restore = step_zero_is_untouched
    with pytest.warns(RuntimeWarning, match="capture of the ali_kplus1 training step failed") as caught:
        for step in range(spec["steps"]):
            epoch, pos = divmod(step, N_DATA // BATCH)
            idx = epoch_permutation(spec["seed"], epoch, N_DATA, data.device)[pos * BATCH:(pos + 1) * BATCH]
            inputs = {"x": as_model_input(data[idx]), **model.step_inputs(step)}
            model.on_step(step)
            runner(inputs)
    assert len(caught) == 1
    assert runner.engine == "eager (capture failed: RuntimeError: operation not permitted when stream is capturing)"
    # the three warm-up steps were undone: weights, BN statistics, Polyak averages, Adam state, RNG ...
    assert steps == [True, True]
    # ... so training on from there equals the eager run
    assert_same_training_state(model, reference)


def test_no_capture_asked_gives_the_eager_engine(monkeypatch):
    spec, data = tiny_spec("vae"), tiny_data()
    fake_cuda_graphs(monkeypatch, RuntimeError("must not be tried"))
    solo = SoloRun(build(spec, data), data, batch_size=BATCH, seed=0, run_dir=None)
    runner = StepRunner(solo.step, capture=False, snapshot=solo.snapshot, restore=solo.restore)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runner({"x": data[:BATCH].float()})
    assert runner.engine == "eager" and runner.replays == 0


# ----------------------------------------------------------------------------------- step options
def test_step_options_validate_and_name_their_config_key():
    with pytest.raises(ValueError, match="config key 'images.precision' must be one of"):
        StepOptions("fp16", section="images")
    with pytest.raises(ValueError, match="config key 'semisup.capture' must be one of"):
        StepOptions(capture="always", section="semisup")
    assert StepOptions.from_spec({"experiment": "images", "amp": True}).precision == "bf16"  # older specs
    assert StepOptions.from_spec({"experiment": "images", "amp": True, "precision": "tf32"}).precision == "tf32"
    assert StepOptions.from_spec({}) == StepOptions("fp32", False, "auto")


@pytest.mark.parametrize("model,precision", [("vae", "bf16"), ("gan", "tf32"), ("gan_fm", "bf16")])
def test_cuda_only_precisions_on_cpu_are_a_clear_error(tmp_path, model, precision):
    spec, data = tiny_spec(model, precision=precision), tiny_data()
    key = "images" if model in IMAGE_MODELS else "semisup"
    with pytest.raises(ValueError) as err:
        run_loop(spec, tmp_path, data)
    msg = str(err.value)
    assert f"config key '{key}.precision' is '{precision}'" in msg and "CUDA" in msg and "'fp32'" in msg


def test_capture_on_on_cpu_is_a_clear_error_and_auto_trains_eagerly(tmp_path):
    with pytest.raises(ValueError, match="config key 'images.capture' is 'on'.*'auto' or 'off'"):
        run_loop(tiny_spec("ali", capture="on"), tmp_path / "on", tiny_data())
    _, result = run_loop(tiny_spec("ali", capture="auto", steps=2), tmp_path / "auto", tiny_data())
    assert (result.engine, result.precision, result.channels_last) == ("eager", "fp32", False)


def test_capture_auto_means_on_exactly_for_cuda():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert not execution("fp32", "auto", cpu) and execution("fp32", "auto", cuda)
    assert not execution("fp32", "off", cuda)
    assert AdamKernel.for_device(cpu, capture=False) == AdamKernel()  # CPU keeps PyTorch's default Adam
    assert AdamKernel.for_device(cuda, capture=True) == AdamKernel(fused=True, capturable=True)
    assert AdamKernel.for_device(cuda, capture=False) == AdamKernel(fused=True, capturable=False)


def test_the_loop_keeps_cpu_optimisers_as_built(tmp_path):
    spec, data = tiny_spec("gan", steps=1), tiny_data()
    model = build(spec, data)
    before = dict(model.optimizers)
    train(model, data, steps=1, batch_size=BATCH, seed=0, run_dir=tmp_path, run_hash="h", checkpoint_every=10,
          log_every=1, progress=False)
    assert all(model.optimizers[k] is before[k] for k in before)
    assert all(g["fused"] is None and g["capturable"] is False for o in before.values() for g in o.param_groups)


def test_channels_last_trains_on_cpu_and_is_recorded(tmp_path):
    spec, data = tiny_spec("ali_kplus1", channels_last=True, steps=3), tiny_data()
    model, result = run_loop(spec, tmp_path, data)
    assert result.channels_last is True and result.engine == "eager"
    assert model.step_inputs(0)["x_lab"].is_contiguous(memory_format=torch.channels_last)
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in model.parameters() if p.dim() == 4)


@pytest.mark.parametrize("precision,expected", [("fp32", "ieee"), ("bf16", "ieee"), ("tf32", "tf32")])
def test_fp32_math_sets_and_restores_the_cuda_flags(precision, expected):
    flags = (torch.backends.cuda.matmul, torch.backends.cudnn.conv)
    before = [f.fp32_precision for f in flags]
    with fp32_math(precision, torch.device("cuda")):  # flags only: no CUDA needed to set them
        assert [f.fp32_precision for f in flags] == [expected, expected]
    assert [f.fp32_precision for f in flags] == before
    with fp32_math("tf32", torch.device("cpu")):
        assert [f.fp32_precision for f in flags] == before  # nothing on CPU


def test_the_record_says_which_precision_layout_and_engine_trained_it(tmp_path):
    spec, data = tiny_spec("gan", steps=3), tiny_data()
    record = run_training(spec, tmp_path, build=im.build, data=data, device="cpu", progress=False,
                          checkpoint_every=10, log_every=1)
    on_disk = json.loads((tmp_path / RECORD).read_text())
    for rec in (record, on_disk):
        assert (rec["engine"], rec["precision"], rec["channels_last"]) == ("eager", "fp32", False)
        assert not {"capture", "channels_last"} & set(rec["spec"])  # execution: in the record, not the spec


# ------------------------------------------------------------------------------------ learning rate
def test_a_tensor_learning_rate_is_updated_in_place():
    """With capturable Adam the rate is a device tensor the graph reads: on_step fills it, never rebinds it."""
    spec, data = tiny_spec("ali_kplus1", steps_per_epoch=2, epochs=4, decay_epochs=4), tiny_data()
    model = build(spec, data)
    model.use_adam_kernel(AdamKernel(fused=True, capturable=True))  # lr tensors on the parameters' device
    rates = [g["lr"] for opt in model.optimizers.values() for g in opt.param_groups]
    assert rates and all(torch.is_tensor(r) for r in rates)
    model.on_step(7)  # epoch 3 of 4, decay over 4 epochs: a quarter of the base rate
    after = [g["lr"] for opt in model.optimizers.values() for g in opt.param_groups]
    assert all(a is r for a, r in zip(after, rates))
    assert all(float(r) == pytest.approx(1e-3 / 4, rel=1e-6) for r in rates)
