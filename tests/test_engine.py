"""The run-batched engine (ali/engine) against the solo models and against itself.

- A run's numbers do not depend on its group: a group of 3 ends bit-identical to 3 groups of 1.
- The group of 1 is the solo model: same losses step by step as ``Model.train_step`` fed the same
  batches and noise, parameters within the rounding of a different BatchNorm kernel.
- Adam is torch.optim.Adam(fused=True) per run, bit for bit; a frozen run does not move.
- Divergence freezes one run and leaves the others exactly as without it.
- train_group: kill and resume end bit-identical, outputs load into the solo model, the group
  checkpoint guards its config, the history, the CUDA-graph runner's logic (with fake graphs).
Narrow networks (gen_hidden 32, disc_hidden 16) and 2,000 training points keep each test to seconds.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
from pathlib import Path

import pytest
import torch
from conftest import PAPER

from ali.config import load_config
from torch.utils._python_dispatch import TorchDispatchMode

from ali.engine.adam import RunAdam
from ali.data.batches import epoch_permutation
from ali.engine.batched import BatchedAdversary
from ali.engine.noise import RunNoise
from ali.engine.step import GroupStep
from ali.experiments import mixture as mx
from ali.experiments.mixture import run_key
from ali.experiments.mixture import train_batched as train_group
from ali.models.base import AdamKernel, noise_key
from ali.optim import AdamConfig
from ali.provenance import config_hash
from ali.train import group as lifecycle_group
from ali.train.checkpoint import CHECKPOINT as GROUP_CHECKPOINT
from ali.train.checkpoint import CheckpointError
from ali.train.graph import StepRunner
from ali.train.progress import HISTORY
from ali.train.runtime import seed_everything

PLAN = mx.plan(load_config(PAPER))
CPU = torch.device("cpu")


def tiny(key: str, steps: int = 100, **changes) -> dict:
    """A paper-plan spec with narrow networks and 2,000 training points (20 steps per epoch)."""
    spec = copy.deepcopy(PLAN[key])
    spec["nets"].update(gen_hidden=32, disc_hidden=16)
    spec["data"].update(n_train=2000, n_heldout=500)
    spec.update(steps=steps, **changes)
    return spec


def differing(model: str, n: int, **changes) -> list[dict]:
    """n runs of the random protocol: different seeds, lr, beta1 and init std; run 1 also another beta2."""
    specs = [tiny(f"random/{model}/run{i}", **changes) for i in range(n)]
    if n > 1:
        specs[1]["adam"]["beta2"] = 0.99
    return specs


def build_group(specs: list[dict], device: torch.device, adam_kernel: str | None = None) -> GroupStep:
    """The group as the mixture experiment builds it: its solo models and training sets."""
    return lifecycle_group.build_group(specs, mx.build, mx.training_sets(specs), device, adam_kernel=adam_kernel)


def trained(specs: list[dict], steps: int, adam_kernel: str | None = None) -> GroupStep:
    group = build_group(specs, CPU, adam_kernel=adam_kernel)
    for step in range(steps):
        group.prepare(step)
        group()
    return group


def run_state(group: GroupStep, r: int) -> dict[str, torch.Tensor]:
    """Everything run r owns: solo state dict (weights, BN statistics), Adam state, divergence flags."""
    state = {f"model.{k}": v for k, v in group.run_state_dict(r).items()}
    for side, player in (("d", group.d), ("g", group.g)):
        state.update({f"adam.{side}.{k}": v[r].clone() for k, v in player.adam.state_dict().items()})
    state.update(alive=group.alive[r].clone(), first_bad=group.first_bad[r].clone())
    return state


def assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, equal_nan=True, msg=k)


# --------------------------------------------------------------------------------- group invariance
@pytest.mark.parametrize("model, update, n_runs, steps", [
    pytest.param("ali", "simultaneous", 3, 120, marks=pytest.mark.slow),  # 6 epochs
    ("gan", "simultaneous", 3, 50), ("ali", "alternating", 2, 30)])
def test_group_ends_bit_identical_to_groups_of_one(model, update, n_runs, steps):
    """On one CPU thread (the workflow's setting). With more threads, MKL splits a gemm's inner sum
    across threads for some shapes and batch counts, so runs agree only to float reassociation."""
    specs = differing(model, n_runs, update=update)
    assert len({(s["seed"], s["adam"]["lr"], s["adam"]["beta1"], s["init_std"]) for s in specs}) == n_runs
    group = trained(specs, steps)
    for r, spec in enumerate(specs):
        assert_identical(run_state(group, r), run_state(trained([spec], steps), 0))
    assert bool(group.alive.all()) and int(group.bn_batches[0]) == steps * (2 if update == "alternating" else 1)
    # ... and the runs did differ and move
    assert not torch.equal(group.d.param[0], group.d.param[1])
    assert not torch.equal(group.d.param[0], build_group(specs[:1], CPU).d.param[0])


def test_with_the_batched_adam_a_group_ends_bit_identical_to_groups_of_one():
    """CUDA's Adam (one update for all runs), run on CPU: a run's numbers still do not depend on its group."""
    specs = differing("ali", 3)
    group = trained(specs, 30, "batched")
    for r, spec in enumerate(specs):
        assert_identical(run_state(group, r), run_state(trained([spec], 30, "batched"), 0))
    assert not torch.equal(group.d.param[0], build_group(specs[:1], CPU).d.param[0])


def test_pacgan_runs_each_train_on_their_own_set_in_one_group():
    """PacGAN's protocol: every run draws a fresh training set; grouped, each run still sees only its own."""
    specs = [tiny(f"pacgan/ali/run{i}", steps=40) for i in range(2)]
    for spec in specs:
        spec["data"].update(n_train=2000, n_heldout=500)
    assert specs[0]["data"]["seed"] != specs[1]["data"]["seed"]
    group = trained(specs, 40)
    assert group.data.shape[0] == 2 and not torch.equal(group.data[0], group.data[1])
    for r, spec in enumerate(specs):
        assert_identical(run_state(group, r), run_state(trained([spec], 40), 0))


def test_initial_weights_are_the_solo_builds():
    specs = differing("ali", 2)
    group = build_group(specs, CPU)
    for r, spec in enumerate(specs):
        seed_everything(spec["seed"])
        assert_identical(group.run_state_dict(r), mx.build(spec).state_dict())


# ------------------------------------------------------------------------------------ vs the solo model
def solo_steps(spec: dict, steps: int) -> tuple[list[list[float]], dict]:
    """The solo model's own train_step, fed the engine's batches and noise (``RunNoise`` of the run's seed,
    passed as the step's noise inputs); torch.optim.Adam.

    Returns each step's [L_D, L_G] and the final state dict."""
    seed_everything(spec["seed"])
    model = mx.build(spec).train()
    adam = AdamConfig(**spec["adam"])
    model.optimizers = {k: torch.optim.Adam(params, lr=adam.lr, betas=adam.torch_betas(), eps=1e-8, fused=True)
                        for k, params in (("d", model.d_parameters()), ("g", model.g_parameters()))}
    x, _ = mx.train_set(mx.mixture_data(spec))
    data = torch.from_numpy(x)
    perm = epoch_permutation(spec["seed"], 0, len(data), CPU)
    b = spec["batch_size"]
    shapes = model.noise_shapes(data[:b])  # the solo model's noise inputs, in order
    noise = RunNoise([spec["seed"]], list(shapes.values()), CPU)
    losses = []
    for k in range(steps):
        inputs = {noise_key(name, p): t[0] for p in range(model.forward_passes)
                  for name, t in zip(shapes, noise(torch.tensor(k), p))}
        out = model.train_step(data[perm[k * b:(k + 1) * b]], **inputs)
        losses.append([float(out["loss_d"]), float(out["loss_g"])])
    return losses, model.state_dict()


@pytest.mark.parametrize("key, update, adam_kernel", [
    ("random/ali/run1", "simultaneous", None), ("random/gan/run1", "simultaneous", None),
    ("random/ali/run1", "alternating", None), ("random/gan/run1", "simultaneous", "batched")])
def test_group_of_one_is_the_solo_model(key, update, adam_kernel):
    """Same losses (L_D and L_G) each step; parameters as close as a rounding difference lets them stay.

    The one difference is BatchNorm's kernel ((1, C, B) here, (B, C) there): ~1e-7 relative in the
    gradients. Adam's first steps normalise by |g|, so a gradient entry near zero can flip its step's
    sign; most entries agree far closer than one step.
    """
    spec = tiny(key, update=update)
    steps = 8
    solo_losses, solo_state = solo_steps(spec, steps)
    group = build_group([spec], CPU, adam_kernel=adam_kernel)
    engine_losses = []
    for k in range(steps):
        group.prepare(k)
        group()
        engine_losses.append(group.loss_sums[0].tolist())
        group.loss_sums.zero_()
    torch.testing.assert_close(engine_losses, solo_losses, rtol=1e-6, atol=0)
    step_size = AdamConfig(**spec["adam"]).lr
    engine_state = group.run_state_dict(0)
    assert engine_state.keys() == solo_state.keys()
    for name, value in solo_state.items():
        if name.endswith("num_batches_tracked"):
            assert torch.equal(engine_state[name], value), name
        elif "running" in name:
            torch.testing.assert_close(engine_state[name], value, rtol=1e-4, atol=1e-6, msg=name)
        else:
            diff = (engine_state[name] - value).abs()
            assert diff.median() <= 1e-3 * step_size, (name, float(diff.median()))


def test_adam_is_torch_fused_adam_per_run():
    g = torch.Generator().manual_seed(0)
    lrs, betas = [1e-3, 3e-4, 2e-2], [(0.5, 0.999), (0.2, 0.99), (0.9, 0.999)]
    param = torch.randn(3, 70, generator=g)
    slots = [(0, 40), (40, 30)]
    adam = RunAdam(param, slots, lrs, betas)
    refs = [[torch.nn.Parameter(param[r, a:a + n].clone()) for a, n in slots] for r in range(3)]
    opts = [torch.optim.Adam(refs[r], lr=lrs[r], betas=betas[r], eps=1e-8, fused=True) for r in range(3)]
    frozen_at = {4, 5}  # run 2 skips these steps
    for step in range(12):
        grads = [torch.randn(3, n, generator=g) for _, n in slots]
        frozen = torch.tensor([0.0, 0.0, 1.0 if step in frozen_at else 0.0])
        before = param[2].clone()
        adam.step(grads, frozen)
        for r in range(3):
            if frozen[r] == 0:
                for p, grad in zip(refs[r], grads):
                    p.grad = grad[r].clone()
                opts[r].step()
        if step in frozen_at:
            assert torch.equal(param[2], before)
    for r in range(3):
        assert torch.equal(param[r], torch.cat([p.detach() for p in refs[r]])), r
        assert torch.equal(adam.exp_avg_sq[r], torch.cat([opts[r].state[p]["exp_avg_sq"] for p in refs[r]])), r
    assert adam.steps.tolist() == [12.0, 12.0, 10.0]


def test_batched_adam_is_torch_adam_per_run_and_a_run_moves_the_same_in_any_group():
    g = torch.Generator().manual_seed(0)
    lrs, betas = [1e-3, 3e-4, 2e-2], [(0.5, 0.999), (0.2, 0.99), (0.9, 0.999)]
    param = torch.randn(3, 70, generator=g)
    slots = [(0, 40), (40, 30)]
    frozen_at = {0, 4, 5}  # run 2 skips these steps (its very first included), with non-finite gradients
    grads = [[torch.randn(3, n, generator=g) for _, n in slots] for _ in range(12)]
    for step in frozen_at:
        grads[step][0][2, 0] = float("nan")
    frozen = [torch.tensor([0.0, 0.0, 1.0 if step in frozen_at else 0.0]) for step in range(12)]
    refs = [[torch.nn.Parameter(param[r, a:a + n].clone()) for a, n in slots] for r in range(3)]
    opts = [torch.optim.Adam(refs[r], lr=lrs[r], betas=betas[r], eps=1e-8) for r in range(3)]
    adam = RunAdam(param.clone(), slots, lrs, betas, kernel="batched")
    for step in range(12):
        before = adam.state_dict()["param"][2].clone(), adam.exp_avg[2].clone(), adam.exp_avg_sq[2].clone()
        adam.step(grads[step], frozen[step])
        for r in range(3):
            if frozen[step][r] == 0:
                for p, grad in zip(refs[r], grads[step]):
                    p.grad = grad[r].clone()
                opts[r].step()
        if step in frozen_at:
            after = adam.param[2], adam.exp_avg[2], adam.exp_avg_sq[2]
            assert all(torch.equal(a, b) for a, b in zip(before, after))  # a frozen run does not move at all
    for r in range(3):
        torch.testing.assert_close(adam.param[r], torch.cat([p.detach() for p in refs[r]]), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(adam.exp_avg_sq[r], torch.cat([opts[r].state[p]["exp_avg_sq"] for p in refs[r]]),
                                   rtol=1e-6, atol=0)
    assert adam.steps.tolist() == [12.0, 12.0, 9.0]
    for r in range(3):  # alone, run r ends bit-identical to its row of the group
        alone = RunAdam(param[r:r + 1].clone(), slots, lrs[r:r + 1], betas[r:r + 1], kernel="batched")
        for step in range(12):
            alone.step([gr[r:r + 1] for gr in grads[step]], frozen[step][r:r + 1])
        for name, value in alone.state_dict().items():
            assert torch.equal(value[0], adam.state_dict()[name][r]), (r, name)


# ------------------------------------------------------------------------------------------- divergence
def test_a_diverging_run_is_frozen_and_the_others_untouched():
    specs = differing("ali", 3)
    clean = trained(specs, 40)
    group = trained(specs, 20)
    with torch.no_grad():
        group.d.param[1, 0] = float("nan")  # run 1's discriminator breaks after step 20
    frozen = run_state(group, 1)
    for step in range(20, 40):
        group.prepare(step)
        group()
    assert group.alive.tolist() == [True, False, True]
    assert group.first_bad.tolist() == [0, 21, 0]
    assert_identical(run_state(group, 0), run_state(clean, 0))
    assert_identical(run_state(group, 2), run_state(clean, 2))
    frozen.update(alive=torch.tensor(False), first_bad=torch.tensor(21))
    assert_identical(run_state(group, 1), frozen)  # weights, BN statistics and Adam state as at step 20


# ---------------------------------------------------------------------------------------------- noise
def step_noise(specs: list[dict], steps: int = 2) -> list[list[torch.Tensor]]:
    """The noise each step feeds the batched losses: per step, one (R, dim, B) tensor per noise input."""
    seen = []
    original = BatchedAdversary.losses

    def recording(self, params, stats, x, noise):
        seen.append([t.detach().clone() for t in noise])
        return original(self, params, stats, x, noise)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(BatchedAdversary, "losses", recording)
        trained(specs, steps)
    return seen


@pytest.mark.parametrize("model", ["ali", "gan"])
def test_runs_with_different_seeds_draw_different_noise(model):
    specs = differing(model, 2)
    assert specs[0]["seed"] != specs[1]["seed"]
    for noise in step_noise(specs):
        for t in noise:
            assert not torch.equal(t[0], t[1])
    # a run's own noise moves on from step to step
    first, second = step_noise(specs[:1])
    assert not torch.equal(first[0], second[0])


def test_a_runs_noise_stream_is_not_its_initialisation_stream():
    """The weights come from the global RNG seeded with the run's seed; the noise must come from elsewhere."""
    spec = differing("ali", 1)[0]
    eps = step_noise([spec], steps=1)[0][0][0].t().flatten()  # run 0's first draw, in draw order
    init_stream = torch.randn(100_000, generator=torch.Generator().manual_seed(spec["seed"]))
    windows = init_stream.unfold(0, 4, 1)                        # every 4 consecutive draws
    assert not (windows == eps[:4]).all(dim=1).any()


# ---------------------------------------------------------------------------------------- host syncs
HOST_SYNC_OPS = ("aten::nonzero", "aten::masked_select", "aten::_local_scalar_dense", "aten::is_nonzero",
                 "aten::item", "aten::unique", "aten::_unique")
INDEXING = ("aten::index.", "aten::index_put", "aten::_index_put_impl")


class HostSyncs(TorchDispatchMode):
    """Records every dispatched op that reads a device value on the host or has a data-dependent shape:
    the ops above, and indexing with a boolean mask (``t[mask]``, ``t[mask] = v``)."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func._schema.name) + "." + func._overloadname
        if name.startswith(HOST_SYNC_OPS):
            self.found.append(name)
        elif name.startswith(INDEXING) and _has_bool_index(args):
            self.found.append(f"{name} with a boolean mask")
        return func(*args, **kwargs)


def _has_bool_index(args) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(torch.is_tensor(i) and i.dtype in (torch.bool, torch.uint8) for i in (indices or ()))


def test_the_host_sync_detector_sees_syncs_and_boolean_masks():
    with HostSyncs() as probe:
        t = torch.arange(4.0)
        mask = t > 1
        t[mask] = 0.0
        _ = t[mask]
        torch.where(mask, t, 1.0)  # no sync: fine
        float(t.sum())
        t.nonzero()
    assert probe.found == ["aten::index_put_.default with a boolean mask", "aten::index.Tensor with a boolean mask",
                           "aten::_local_scalar_dense.default", "aten::nonzero.default"]


@pytest.mark.parametrize("update, adam_kernel", [("simultaneous", "fused"), ("alternating", "fused"),
                                                 ("simultaneous", "batched")])
def test_the_group_step_never_syncs_with_the_host(update, adam_kernel):
    """What a CUDA graph needs, checked on every op the dispatcher sees: forward, both gradients, Adam, commit."""
    group = build_group(differing("ali", 2, update=update), CPU, adam_kernel=adam_kernel)
    group.prepare(0)
    with HostSyncs() as probe:
        group()
        group()
    assert probe.found == []
    assert int(group.step_count) == 2


@pytest.mark.parametrize("model", ["ali", "gan"])
def test_the_solo_step_never_syncs_with_the_host(model):
    spec = tiny(f"random/{model}/run0")
    seed_everything(spec["seed"])
    solo = mx.build(spec).train()
    solo.use_adam_kernel(AdamKernel(fused=True))  # the kernels CUDA uses (the CPU default reads its step on the host)
    x = torch.randn(spec["batch_size"], 2)
    inputs = solo.step_noise(x)
    with HostSyncs() as probe:
        for _ in range(2):
            solo.train_step(x, **inputs)
    assert probe.found == []


# ---------------------------------------------------------------------------------------- host syncs
def test_the_step_never_syncs_with_the_host(monkeypatch):
    """What a CUDA graph needs: no .item(), bool(tensor), float(tensor) or .tolist() inside the step."""
    group = build_group(differing("ali", 2), CPU)
    group.prepare(0)

    def forbidden(*_, **__):
        raise AssertionError("host sync inside the group step")

    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "numpy", "cpu"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    group()
    group()
    monkeypatch.undo()
    assert int(group.step_count) == 2


# ------------------------------------------------------------------------------------ launch count
class OpCounter(TorchDispatchMode):
    """Counts every op the dispatcher runs (the CPU proxy for kernel launches on a GPU)."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("update", ["simultaneous", "alternating"])
def test_a_group_step_dispatches_the_same_ops_for_1_10_and_40_runs(update):
    """Noise, forward, gradients, Adam and the commit are each batched over the runs: no per-run loop."""
    specs = [tiny(f"random/gan/run{i % 10}", update=update, seed=i) for i in range(40)]
    for spec in specs:
        spec["nets"].update(gen_hidden=8, disc_hidden=4)
    counts, groups = {}, {}
    for r in (1, 10, 40):
        group = build_group(specs[:r], CPU, adam_kernel="batched")  # CUDA's Adam (CPU's is a fused call per run)
        group.prepare(0)
        group()  # lazy state on the first call
        with OpCounter() as counter:
            group()
        counts[r], groups[r] = counter.ops, group
    assert counts[1] == counts[10] == counts[40]
    assert len(counts[1]) > 50  # the counter saw the whole step
    # and a wide group (every CPU vector loop runs full lanes over it) still leaves each run as alone
    last = build_group(specs[39:], CPU, adam_kernel="batched")
    for step in range(2):
        last.prepare(step)
        last()
    assert_identical(run_state(groups[40], 39), run_state(last, 0))
    assert_identical(run_state(groups[40], 0), run_state(groups[1], 0))


# ------------------------------------------------------------------------------------- CUDA-graph runner
class FakeGraph:
    """torch.cuda.CUDAGraph for a CPU test: replay calls the captured step; ``fail`` makes capture raise."""

    fail = False

    def __init__(self):
        self.generators, self.step = [], None

    def register_generator_state(self, gen):
        self.generators.append(gen)

    def replay(self):
        self.step()


class FakeStream:
    def wait_stream(self, other):
        pass


@pytest.mark.parametrize("fail", [False, True])
def test_capture_runner_replays_the_eager_step(monkeypatch, fail):
    """Warm-up steps and one capture that leave no trace, then replays: the trajectory of eager steps."""
    specs = differing("ali", 2)
    group = build_group(specs, CPU)
    captures = []

    @contextlib.contextmanager
    def capture(graph):  # like torch.cuda.graph: the body is recorded, not run, so the state is restored
        if FakeGraph.fail:
            raise RuntimeError("not capturable here")
        snapshot = group.state_dict()
        yield
        group.load_state_dict(snapshot)
        graph.step = group
        captures.append(graph)

    monkeypatch.setattr(FakeGraph, "fail", fail)
    for name, fake in (("CUDAGraph", FakeGraph), ("graph", capture), ("Stream", FakeStream),
                       ("current_stream", FakeStream), ("stream", lambda s: contextlib.nullcontext()),
                       ("synchronize", lambda: None)):
        monkeypatch.setattr(torch.cuda, name, fake)
    runner = StepRunner(lambda inputs: group(), capture=True, snapshot=group.state_dict,
                        restore=group.load_state_dict, label="group-")
    with pytest.warns(RuntimeWarning) if fail else contextlib.nullcontext():
        for step in range(12):
            group.prepare(step)
            runner()
    if fail:
        assert runner.engine == "group-eager (capture failed: RuntimeError: not capturable here)" and not captures
        assert runner.replays == 0
    else:
        assert runner.engine == "group-captured" and len(captures) == 1 and runner.replays == 12
        assert captures[0].generators == []  # the noise is a function of (seed, step): no generator state
    eager = trained(specs, 12)
    for r in range(2):
        assert_identical(run_state(group, r), run_state(eager, r))


# ------------------------------------------------------------------------------------------ train_group
SOLO_RECORD_KEYS = {"spec", "config_hash", "run_dir", "provenance", "status", "steps_done", "diverged",
                    "diverged_by_step", "wall_time_s", "resumed_from_step", "final_losses", "finished_at"}


def group_run(specs: list[dict], root: Path, **options) -> list[dict]:
    options = {"device": "cpu", "progress": False, "checkpoint_every": 1000, "log_every": 10, "eval_every": 20,
               **options}
    return train_group(specs, [root / run_key(s) for s in specs], **options)


def model_file(record: dict) -> dict:
    return torch.load(Path(record["run_dir"]) / mx.MODEL_FILE, map_location="cpu", weights_only=True)


def history(record: dict, with_wall: bool = False) -> list[dict]:
    with open(Path(record["run_dir"]) / HISTORY, newline="") as f:
        return [{k: v for k, v in row.items() if with_wall or k != "wall_s"} for row in csv.DictReader(f)]


def test_kill_and_resume_end_bit_identical(tmp_path):
    specs = differing("ali", 2, steps=60)
    full = group_run(specs, tmp_path / "full")
    for stop_at in (25, 50):  # killed twice, each time between checkpoints (every 20 steps)
        with pytest.raises(KeyboardInterrupt):
            group_run(specs, tmp_path / "killed", checkpoint_every=20, stop_at=stop_at)
    resumed = group_run(specs, tmp_path / "killed", checkpoint_every=20)
    for a, b in zip(full, resumed):
        assert (a["resumed_from_step"], b["resumed_from_step"]) == (None, 40)
        assert a["final_losses"] == b["final_losses"] and a["steps_done"] == b["steps_done"] == 60
        assert_identical(model_file(a), model_file(b))
        assert history(a) == history(b)


def test_outputs_are_the_solo_paths(tmp_path):
    specs = differing("ali", 2, steps=30)
    records = group_run(specs, tmp_path)
    group = trained(specs, 30)
    z = torch.randn(500, 2, generator=torch.Generator().manual_seed(1))
    for r, (spec, record) in enumerate(zip(specs, records)):
        run_dir = Path(record["run_dir"])
        model, on_disk = mx.load_trained(run_dir)  # the solo module, model.pt loaded with weights_only=True
        assert on_disk == json.loads(json.dumps(record))
        assert json.loads((run_dir / mx.SPEC).read_text()) == json.loads(json.dumps(spec))
        assert SOLO_RECORD_KEYS <= record.keys()
        assert (record["status"], record["steps_done"], record["config_hash"]) == ("ok", 30, config_hash(spec))
        assert (record["engine"], record["group_size"], record["precision"]) == ("group-eager", 2, "fp32")
        assert record["group_members"] == [run_key(s) for s in specs]
        assert_identical(model.state_dict(), group.run_state_dict(r))
        with torch.no_grad():
            torch.testing.assert_close(model.decode(z), group.decode(z)[r], rtol=1e-5, atol=1e-6)


def test_history_has_losses_every_log_and_coverage_every_eval(tmp_path):
    (record,) = group_run(differing("gan", 1, steps=50), tmp_path, log_every=10, eval_every=20)
    rows = history(record, with_wall=True)
    assert list(rows[0]) == ["step", "wall_s", "loss_d", "loss_g", "modes", "hq_pct"]
    assert [int(r["step"]) for r in rows] == [10, 20, 30, 40, 50]
    evaluated = [int(r["step"]) for r in rows if r["modes"]]
    assert evaluated == [20, 40, 50]  # every eval_every steps, and the last step
    for row in rows:
        assert 0 < float(row["loss_d"]) < 10 and float(row["wall_s"]) >= 0
        if row["modes"]:
            assert 1 <= int(row["modes"]) <= 25 and 0 <= float(row["hq_pct"]) <= 100
    assert record["final_losses"] == {"loss_d": float(rows[-1]["loss_d"]), "loss_g": float(rows[-1]["loss_g"])}


def test_group_checkpoint_is_plain_tensors_and_guards_its_config(tmp_path):
    specs = differing("ali", 2, steps=30)
    with pytest.raises(KeyboardInterrupt):
        group_run(specs, tmp_path, checkpoint_every=10, stop_at=15)
    path = tmp_path / run_key(specs[0]) / GROUP_CHECKPOINT
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["step"] == 10 and ckpt["device"] == "cpu"
    state = ckpt["state"]["group"]
    assert "generators" not in state  # the noise is a function of (seed, step): no generator state
    assert state["alive"].tolist() == [True, True] and state["first_bad"].tolist() == [0, 0]
    assert state["d"]["exp_avg"].shape == state["d"]["param"].shape and state["d"]["steps"].tolist() == [10, 10]

    changed = copy.deepcopy(specs)
    changed[1]["adam"]["lr"] *= 2
    with pytest.raises(CheckpointError, match=f"{path}.*delete"):
        group_run(changed, tmp_path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="(?s)unreadable.*delete it"):
        group_run(specs, tmp_path)


def test_a_diverged_run_is_recorded_and_the_others_end_as_without_it(tmp_path):
    specs = differing("ali", 3, steps=30)
    specs[1]["adam"]["lr"], specs[1]["init_std"] = 1e10, 1.0  # blows up within a few steps
    records = group_run(specs, tmp_path / "with")
    bad = records[1]
    first_bad = int(trained([specs[1]], 30).first_bad[0])  # the same step when it trains alone
    assert 1 <= first_bad < 10
    assert (bad["status"], bad["diverged"], bad["diverged_by_step"], bad["steps_done"]) == (
        "diverged", True, first_bad, first_bad)
    rows = history(bad)
    assert len(rows) == 1 and rows[0]["step"] == "10" and rows[0]["loss_d"] in ("nan", "inf")
    with pytest.raises(ValueError, match="diverged"):
        mx.load_trained(Path(bad["run_dir"]))
    without = group_run([specs[0], specs[2]], tmp_path / "without")
    for a, b in zip([records[0], records[2]], without):
        assert a["status"] == "ok" and a["final_losses"] == b["final_losses"]
        assert_identical(model_file(a), model_file(b))
        assert history(a) == history(b)


@pytest.mark.parametrize("change, message", [
    ({"precision": "bf16"}, "'mixture.precision' is 'bf16', which needs a CUDA device; training runs on cpu"),
    ({"capture": "on"}, "'mixture.capture' is 'on', but CUDA graphs need a CUDA device"),
    ({"capture": "sometimes"}, "'mixture.capture' must be one of"),
    ({"log_every": 0}, "log_every must be a positive"),
])
def test_bad_options_are_refused(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        group_run(differing("ali", 1, steps=5), tmp_path, **change)


def test_runs_that_cannot_share_a_group_are_refused(tmp_path):
    with pytest.raises(ValueError, match="must share 'model'"):
        group_run([tiny("random/ali/run0"), tiny("random/gan/run1")], tmp_path)
    with pytest.raises(ValueError, match="trains ali and gan runs"):
        group_run([tiny("random/vae/run0")], tmp_path)
    spec = tiny("random/ali/run0")
    with pytest.raises(ValueError, match="share a run directory"):
        train_group([spec, spec], [tmp_path, tmp_path], device="cpu")
