"""The one loop driver: resume, steps, logging, divergence, checkpoints, preemption and a simulated
kill, for a solo run (``SoloRun``, this file) and a group of runs (``ali.train.group.GroupRun``) alike.

What trains is a *trainee*: it says what a step's inputs are (``inputs``, outside the step), runs a
step that reads and writes only tensors it owns (``step``, what the graph runner captures), counts
the step's outputs (``account``), writes the history rows of a log interval with one host sync
(``log``, False once nothing is left to train), and saves and restores its state. The driver never
syncs with the device except through ``log`` and ``may_checkpoint``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from ali.data.batches import as_model_input, epoch_permutation
from ali.models.base import AdamKernel, Model
from ali.train.checkpoint import CHECKPOINT, CheckpointError, check_fits, read_checkpoint, restore_rng, save_checkpoint
from ali.train.graph import Inputs, StepRunner
from ali.train.preempt import STOP, Preempted
from ali.train.progress import HISTORY, History, Progress, log_averages
from ali.train.record import finish_run, new_record
from ali.train.runtime import execution, fp32_math, resolve_device, seed_everything


class Trainee(Protocol):
    generators: list[torch.Generator]

    def begin(self, resumed_from: int | None) -> None: ...
    def inputs(self, step: int) -> dict[str, torch.Tensor]: ...
    def step(self, inputs: Inputs) -> Any: ...
    def account(self, outputs: Any) -> None: ...
    def log(self, step: int, wall: float, evaluate: bool) -> bool: ...
    def progress_losses(self) -> dict[str, float]: ...
    def may_checkpoint(self, step: int) -> bool: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...
    def snapshot(self) -> Any: ...
    def restore(self, saved: Any) -> None: ...


@dataclass
class Outcome:
    """What the driver did: the last step taken, time, the resume point and the engine that ran."""

    steps_done: int
    wall_time_s: float
    resumed_from_step: int | None
    engine: str


def drive(trainee: Trainee, *, steps: int, checkpoint: Path, owner: str, device: torch.device, capture: bool,
          precision: str, checkpoint_every: int, log_every: int, eval_every: int | None = None, desc: str = "train",
          what: str = "run", label: str = "", progress: bool = True, stop_at: int | None = None) -> Outcome:
    """Train ``trainee`` to ``steps``, resuming from ``checkpoint`` if it exists.

    A history row every ``log_every`` steps and at the end (with an evaluation every ``eval_every``);
    a checkpoint every ``checkpoint_every`` steps; ``stop_at`` raises KeyboardInterrupt after that
    step (a simulated kill). ``owner`` is the hash the checkpoint belongs to. A stop request
    (``ali.train.preempt``: SIGTERM or SIGUSR1 under the CLI's train) writes a checkpoint at the
    next step boundary and raises ``Preempted``.
    """
    for name, every in (("checkpoint_every", checkpoint_every), ("log_every", log_every), ("eval_every", eval_every)):
        if every is not None and every < 1:
            raise ValueError(f"{name} must be a positive number of steps, got {every}")
    start, elapsed, resumed = 0, 0.0, None
    if checkpoint.exists():
        ckpt = read_checkpoint(checkpoint, owner=owner, device=device, what=what)
        check_fits(checkpoint, ckpt["state"], trainee.state_dict())
        try:
            trainee.load_state_dict(ckpt["state"])
        except (KeyError, RuntimeError, ValueError) as err:  # a structure the fit check could not see
            raise CheckpointError(f"checkpoint {checkpoint} does not fit this {what} ({type(err).__name__}); "
                                  f"delete it to restart this {what} from step 0") from err
        restore_rng(ckpt, device)
        start = resumed = ckpt["step"]
        elapsed = ckpt["elapsed"]
    trainee.begin(resumed)
    runner = StepRunner(trainee.step, capture=capture, snapshot=trainee.snapshot, restore=trainee.restore,
                        generators=trainee.generators, label=label, name=f"{desc} training step")
    bar = Progress(steps, start, desc, enabled=progress)
    t_start = time.perf_counter()

    def wall() -> float:
        return elapsed + time.perf_counter() - t_start

    step = start
    STOP.defer()  # a stop signal now waits for the next step boundary
    with fp32_math(precision, device):  # fp32 means IEEE fp32 on CUDA; tf32 lets cuBLAS and cuDNN use TF32
        try:
            while step < steps:
                trainee.account(runner(trainee.inputs(step)))
                step += 1
                evaluate = eval_every is not None and (step % eval_every == 0 or step == steps)
                if evaluate or step % log_every == 0 or step == steps:
                    if not trainee.log(step, wall(), evaluate):
                        break
                    bar.update(step, trainee.progress_losses())
                if step < steps and (step % checkpoint_every == 0 or STOP.signum is not None):
                    if not trainee.may_checkpoint(step):
                        break
                    save_checkpoint(checkpoint, trainee.state_dict(), owner=owner, device=device, step=step,
                                    elapsed=wall())
                    if STOP.signum is not None:  # preempted: this step's checkpoint is written
                        raise Preempted(STOP.signum, step, checkpoint)
                if stop_at is not None and step >= stop_at:
                    raise KeyboardInterrupt(f"stopped at step {step} (simulated kill)")
        finally:
            bar.close()
    return Outcome(step, wall(), resumed, runner.engine)


# -------------------------------------------------------------------------------------- a solo run
@dataclass
class TrainResult:
    steps_done: int
    diverged: bool
    diverged_by_step: int | None
    wall_time_s: float
    resumed_from_step: int | None
    final_losses: dict[str, float] = field(default_factory=dict)
    engine: str = "eager"  # "eager", "captured", or "eager (capture failed: <reason>)"
    precision: str = "fp32"
    channels_last: bool = False


class SoloRun:
    """One ``ali.models.base.Model`` on its training set ``data`` (N, ...), already on the device."""

    def __init__(self, model: Model, data: torch.Tensor, *, batch_size: int, seed: int, run_dir: Path):
        self.model, self.data, self.batch_size, self.seed, self.run_dir = model, data, batch_size, seed, run_dir
        self.steps_per_epoch = data.shape[0] // batch_size
        if self.steps_per_epoch < 1:
            raise ValueError(f"batch_size {batch_size} exceeds the training set ({data.shape[0]} examples)")
        self.channels_last = data.dim() == 4 and model.options.channels_last
        self.generators: list[torch.Generator] = []  # noise comes from the default generator, which capture registers
        self.sums: dict[str, torch.Tensor] = {}
        self.since_log = 0
        self.finite = torch.ones((), dtype=torch.bool, device=data.device)
        self.last_losses: dict[str, float] = {}
        self.diverged_by: int | None = None
        self.perm, self.perm_epoch = None, -1
        self.history: History | None = None

    def begin(self, resumed_from: int | None) -> None:
        self.model.train()
        self.history = History(self.run_dir / HISTORY, self.model.loss_names, resume_step=resumed_from)

    def inputs(self, step: int) -> dict[str, torch.Tensor]:
        epoch, pos = divmod(step, self.steps_per_epoch)
        if epoch != self.perm_epoch:
            self.perm, self.perm_epoch = epoch_permutation(self.seed, epoch, self.data.shape[0], self.data.device), epoch
        rows = self.perm[pos * self.batch_size:(pos + 1) * self.batch_size]
        inputs = {"x": as_model_input(self.data[rows], self.channels_last), **self.model.step_inputs(step)}
        inputs.update(self.model.step_noise(**inputs))  # the step's noise, drawn where the step drew it
        self.model.on_step(step)  # per-step schedules (learning rate); a no-op by default
        return inputs

    def step(self, inputs: Inputs) -> dict[str, torch.Tensor]:
        return self.model.train_step(**inputs)

    def account(self, losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            self.finite &= torch.isfinite(v)
            self.sums[k] = self.sums[k] + v if k in self.sums else v.to(torch.float32, copy=True)  # v may be a graph output
        self.since_log += 1

    def log(self, step: int, wall: float, evaluate: bool) -> bool:
        averages, all_finite = log_averages(self.sums, self.since_log, self.finite)  # the one sync per log interval
        self.history.append(step, wall, averages)
        if not all_finite:
            self.diverged_by = step
            return False
        self.last_losses, self.sums, self.since_log = averages, {}, 0
        return True

    def progress_losses(self) -> dict[str, float]:
        return self.last_losses

    def may_checkpoint(self, step: int) -> bool:
        """Never checkpoint a non-finite state (a NaN between log rows)."""
        if not bool(self.finite):
            self.diverged_by = step
            return False
        return True

    def state_dict(self) -> dict:
        """Weights, optimisers and the loss sums since the last log row (so a resumed run writes the same row)."""
        return {"model": self.model.state_dict(), "optimizers": self.model.optimizer_state(),
                "log_window": {"sums": self.sums, "steps": self.since_log}}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.model.load_optimizer_state(state["optimizers"])
        self.sums = {k: v.to(self.data.device) for k, v in state["log_window"]["sums"].items()}
        self.since_log = state["log_window"]["steps"]

    def snapshot(self) -> dict:
        """Copies of what a step changes: weights and buffers, optimiser state, the RNG states."""
        on_cuda = self.data.is_cuda
        return {"module": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
                "optimizers": [{p: {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()}
                                for p, s in opt.state.items()} for opt in self.model.optimizers.values()],
                "cpu_rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state() if on_cuda else None}

    def restore(self, saved: dict) -> None:
        """Back to ``saved`` in place: every tensor keeps its storage. Optimiser state created since the
        snapshot is zeroed, which Adam reads as no state (step 0, zero moments)."""
        self.model.load_state_dict(saved["module"])  # copies into the existing parameters and buffers
        for opt, before in zip(self.model.optimizers.values(), saved["optimizers"], strict=True):
            for p, state in opt.state.items():
                old = before.get(p)
                for key, value in state.items():
                    if not torch.is_tensor(value):
                        state[key] = old[key] if old is not None else type(value)()
                    elif old is not None:
                        value.copy_(old[key])
                    else:
                        value.zero_()
        torch.set_rng_state(saved["cpu_rng"])
        if saved["cuda_rng"] is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"])


def train(model: Model, data: torch.Tensor, *, steps: int, batch_size: int, seed: int, run_dir: Path,
          run_hash: str, checkpoint_every: int, log_every: int, desc: str = "train",
          progress: bool = True, stop_at: int | None = None) -> TrainResult:
    """Train ``model`` on ``data`` (N, ...) already on the target device, resuming from ``run_dir``.

    The caller seeds and builds the model (so initial weights come from ``seed``); a checkpoint, if
    present, then overrides weights, optimisers and RNG state. ``stop_at`` simulates a killed job.
    On CUDA the optimisers become fused Adam (capturable when the step is captured).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    options, device = model.options, data.device
    capture = execution(options.precision, options.capture, device, options.section)
    model.use_adam_kernel(AdamKernel.for_device(device, capture))
    solo = SoloRun(model, data, batch_size=batch_size, seed=seed, run_dir=run_dir)
    done = drive(solo, steps=steps, checkpoint=run_dir / CHECKPOINT, owner=run_hash, device=device, capture=capture,
                 precision=options.precision, checkpoint_every=checkpoint_every, log_every=log_every, desc=desc,
                 progress=progress, stop_at=stop_at)
    return TrainResult(steps_done=done.steps_done, diverged=solo.diverged_by is not None,
                       diverged_by_step=solo.diverged_by, wall_time_s=done.wall_time_s,
                       resumed_from_step=done.resumed_from_step, final_losses=solo.last_losses, engine=done.engine,
                       precision=options.precision, channels_last=options.channels_last)


def run_training(spec: Mapping, run_dir: Path, *, build: Callable[[Mapping], Model], data: torch.Tensor,
                 device: str = "auto", prepare: Callable[[Model], None] | None = None,
                 extra_record: Mapping | None = None, desc: str = "train", checkpoint_every: int = 10_000,
                 log_every: int = 1000, progress: bool = True, stop_at: int | None = None) -> dict:
    """A solo run's job: seed, build, (prepare), train on ``data`` with resume, save weights and record.

    ``prepare`` runs after the model is built from the seed and before training: loading a frozen
    decoder, setting a data-dependent bias. A checkpoint, if present, then overrides all of it.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    record = new_record(spec, run_dir, dev, **(extra_record or {}))
    seed_everything(spec["seed"])
    model = build(spec)
    if prepare is not None:
        prepare(model)
    model = model.to(dev)
    result = train(model, data.to(dev), steps=spec["steps"], batch_size=spec["batch_size"], seed=spec["seed"],
                   run_dir=run_dir, run_hash=record["config_hash"], checkpoint_every=checkpoint_every,
                   log_every=log_every, desc=desc, progress=progress, stop_at=stop_at)
    record.update(asdict(result))
    if result.diverged:
        record["status"] = "diverged"
    return finish_run(run_dir, spec, model.state_dict(), record)


def save_run_checkpoint(path: Path, model: Model, step: int, elapsed: float, run_hash: str) -> None:
    """A solo model's checkpoint outside the loop (an empty log window), as the loop writes it."""
    device = next(model.parameters()).device
    state = {"model": model.state_dict(), "optimizers": model.optimizer_state(), "log_window": {"sums": {}, "steps": 0}}
    save_checkpoint(path, state, owner=run_hash, device=device, step=step, elapsed=elapsed)


def load_run_checkpoint(path: Path, model: Model, run_hash: str) -> tuple[int, float]:
    """Restore a solo model (weights, optimisers) and every RNG from ``path``: (step, elapsed seconds)."""
    device = next(model.parameters()).device
    ckpt = read_checkpoint(path, owner=run_hash, device=device)
    check_fits(path, ckpt["state"]["model"], model.state_dict(), "model")
    model.load_state_dict(ckpt["state"]["model"])
    model.load_optimizer_state(ckpt["state"]["optimizers"])
    restore_rng(ckpt, device)
    return ckpt["step"], ckpt["elapsed"]
