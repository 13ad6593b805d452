"""The one training loop: seeding, batching, checkpoints and resume, divergence, progress, curves.

Any ``ali.models.base.Model`` trains here: ``train_step(x, **step_inputs) -> {name: loss}`` and
``optimizers``. The loop never syncs with the device except every ``log_every`` steps (to log, write
a ``history.csv`` row and check for divergence) and at checkpoints. The model's ``StepOptions``
say how a step runs (precision, layout, CUDA-graph capture, ``ali.capture``); what ran is recorded.
Checkpoints hold only tensors and plain numbers: they load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ali.capture import make_step_runner
from ali.history import HISTORY, History
from ali.models.base import AdamKernel, Model, StepOptions  # noqa: F401  (StepOptions re-exported)

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_KEYS = ("step", "elapsed", "run_hash", "model", "optimizers", "rng", "log_window")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used; the message says how to proceed."""


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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available; use --device cpu or auto")
    return torch.device(name)


def epoch_permutation(seed: int, epoch: int, n: int, device: torch.device) -> torch.Tensor:
    """The data order of one epoch: a pure function of (seed, epoch), so resume needs no loader state."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).to(device)


def as_model_input(x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """A batch as the model takes it: uint8 images become float in [0, 1] on the device, per batch."""
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def rng_state() -> dict:
    """Every RNG state as tensors and numbers, so a checkpoint loads with ``weights_only=True``."""
    np_state = np.random.get_state(legacy=False)  # MT19937: 624 32-bit keys and a position
    version, py_keys, py_gauss = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                       "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                       "gauss": float(np_state["gauss"])},
             "python": {"version": version, "state": torch.tensor(py_keys, dtype=torch.int64), "gauss": py_gauss}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937", "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"],
                         "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]}})
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, model: Model, step: int, elapsed: float, run_hash: str,
                    log_window: tuple[dict[str, torch.Tensor], int] = ({}, 0)) -> None:
    """Atomic: written to a temporary file, then renamed over the old checkpoint. ``log_window`` is the
    loss sums and step count since the last log row, so a resumed run writes the same next row."""
    tmp = path.with_suffix(".tmp")
    sums, n = log_window
    torch.save({"step": step, "elapsed": elapsed, "run_hash": run_hash, "model": model.state_dict(),
                "optimizers": model.optimizer_state(), "rng": rng_state(),
                "log_window": {"sums": sums, "steps": n}}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model: Model, run_hash: str) -> tuple[int, float]:
    """Restore ``model`` (weights, optimisers) and every RNG from ``path``: (step, elapsed seconds)."""
    ckpt = restore_checkpoint(path, model, run_hash)
    return ckpt["step"], ckpt["elapsed"]


def restore_checkpoint(path: Path, model: Model, run_hash: str) -> dict:
    """``load_checkpoint``, returning the whole checkpoint; a CheckpointError says how to proceed."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        missing = sorted(set(CHECKPOINT_KEYS) - set(ckpt))
        if missing:
            raise KeyError(f"no {missing}")
    except Exception as err:  # truncated file, wrong format, missing keys
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(err).__name__}: {err}); "
                              f"delete it to restart this run from step 0") from err
    if ckpt["run_hash"] != run_hash:
        raise CheckpointError(f"checkpoint {path} belongs to run config {ckpt['run_hash']}, not {run_hash}; "
                              f"delete the run directory {path.parent} to train it afresh")
    model.load_state_dict(ckpt["model"])
    model.load_optimizer_state(ckpt["optimizers"])
    set_rng_state(ckpt["rng"])
    return ckpt


class Progress:
    """A tqdm bar on a terminal; otherwise one plain line every ``log_every`` steps (logs, SLURM)."""

    def __init__(self, total: int, start: int, desc: str, enabled: bool = True):
        self.total, self.desc, self.enabled = total, desc, enabled
        self.tty = enabled and sys.stderr.isatty()
        self.bar = None
        self.t0, self.s0 = time.perf_counter(), start
        if self.tty:
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=start, desc=desc, unit="step", dynamic_ncols=True)

    def update(self, step: int, losses: dict[str, float]) -> None:
        if not self.enabled:
            return
        rate = (step - self.s0) / max(time.perf_counter() - self.t0, 1e-9)
        text = " ".join(f"{k} {v:.4f}" for k, v in losses.items())
        if self.bar is not None:
            self.bar.n = step
            self.bar.set_postfix_str(text, refresh=True)
        else:
            print(f"[{self.desc}] step {step}/{self.total} | {text} | {rate:.1f} steps/s",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def fp32_math(precision: str, device: torch.device) -> Iterator[None]:
    """On CUDA, fp32 matmuls and convolutions in TF32 for precision 'tf32' and in IEEE fp32 otherwise
    (PyTorch's default lets cuDNN convolutions use TF32); restored on exit. Nothing elsewhere.
    Uses the ``fp32_precision`` flags: PyTorch refuses to read the legacy ``allow_tf32`` flags once
    both kinds have been set."""
    if device.type != "cuda":
        yield
        return
    flags = (torch.backends.cuda.matmul, torch.backends.cudnn.conv)
    before = [f.fp32_precision for f in flags]
    for f in flags:
        f.fp32_precision = "tf32" if precision == "tf32" else "ieee"
    try:
        yield
    finally:
        for f, value in zip(flags, before):
            f.fp32_precision = value


def log_averages(sums: dict[str, torch.Tensor], n: int, finite: torch.Tensor) -> tuple[dict[str, float], bool]:
    """Each loss averaged over the ``n`` steps since the last log, and whether every step was finite:
    one host sync."""
    values = torch.stack([*sums.values(), finite.float()]).tolist()
    return {k: v / n for k, v in zip(sums, values)}, bool(values[-1])


def train(model: Model, data: torch.Tensor, *, steps: int, batch_size: int, seed: int, run_dir: Path,
          run_hash: str, checkpoint_every: int, log_every: int, desc: str = "train",
          progress: bool = True, stop_at: int | None = None) -> TrainResult:
    """Train ``model`` on ``data`` (N, ...) already on the target device, resuming from ``run_dir``.

    The caller seeds and builds the model (so initial weights come from ``seed``); a checkpoint, if
    present, then overrides weights, optimisers and RNG state. ``stop_at`` simulates a killed job.
    On CUDA the optimisers become fused Adam (capturable when the step is captured).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / CHECKPOINT
    n = data.shape[0]
    steps_per_epoch = n // batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"batch_size {batch_size} exceeds the training set ({n} examples)")
    options, device = model.options, data.device
    options.check_device(device)
    capture = options.captures(device)
    model.use_adam_kernel(AdamKernel.for_device(device, capture))

    start, elapsed, resumed, sums, since_log = 0, 0.0, None, {}, 0
    if ckpt_path.exists():
        ckpt = restore_checkpoint(ckpt_path, model, run_hash)
        start = resumed = ckpt["step"]
        elapsed = ckpt["elapsed"]
        sums = {k: v.to(device) for k, v in ckpt["log_window"]["sums"].items()}
        since_log = ckpt["log_window"]["steps"]
    model.train()
    history = History(run_dir / HISTORY, model.loss_names, resume_step=resumed)
    channels_last = data.dim() == 4 and options.channels_last

    bar = Progress(steps, start, desc, enabled=progress)
    finite = torch.ones((), dtype=torch.bool, device=device)
    last_losses: dict[str, float] = {}
    diverged_by, perm, perm_epoch, runner = None, None, -1, None
    t_start = time.perf_counter()

    def wall() -> float:
        return elapsed + time.perf_counter() - t_start

    step = start
    with fp32_math(options.precision, device):
        while step < steps:
            epoch, pos = divmod(step, steps_per_epoch)
            if epoch != perm_epoch:
                perm, perm_epoch = epoch_permutation(seed, epoch, n, device), epoch
            x = as_model_input(data[perm[pos * batch_size:(pos + 1) * batch_size]], channels_last)
            inputs = {"x": x, **model.step_inputs(step)}  # computed outside the (capturable) step
            inputs.update(model.step_noise(**inputs))  # the step's noise, drawn where the step drew it
            model.on_step(step)  # per-step schedules (learning rate); a no-op by default
            if runner is None:
                runner = make_step_runner(model, inputs, capture)
            losses = runner(inputs)
            for k, v in losses.items():
                finite &= torch.isfinite(v)
                sums[k] = sums[k] + v if k in sums else v.to(torch.float32, copy=True)  # v may be a graph output
            step += 1
            since_log += 1
            if step % log_every == 0 or step == steps:
                averages, all_finite = log_averages(sums, since_log, finite)  # the one sync per log interval
                history.append(step, wall(), averages)
                if not all_finite:
                    diverged_by = step
                    break
                last_losses, sums, since_log = averages, {}, 0
                bar.update(step, last_losses)
            if step % checkpoint_every == 0 and step < steps:
                if not bool(finite):
                    diverged_by = step
                    break
                save_checkpoint(ckpt_path, model, step, wall(), run_hash, log_window=(sums, since_log))
            if stop_at is not None and step >= stop_at:
                bar.close()
                raise KeyboardInterrupt(f"stopped at step {step} (simulated kill)")
    bar.close()
    return TrainResult(steps_done=step, diverged=diverged_by is not None, diverged_by_step=diverged_by,
                       wall_time_s=wall(), resumed_from_step=resumed, final_losses=last_losses,
                       engine=runner.engine if runner is not None else "eager", precision=options.precision,
                       channels_last=options.channels_last)
