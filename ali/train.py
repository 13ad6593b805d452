"""The one training loop: seeding, batching, checkpoints and resume, divergence, progress.

Any model with ``train_step(x) -> {name: loss}`` and ``optimizers`` trains here. The loop never
syncs with the device except every ``log_every`` steps (to log, and to check for divergence) and at
checkpoints.
"""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ali.models.base import Model

CHECKPOINT = "checkpoint.pt"


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


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, model: Model, step: int, elapsed: float, run_hash: str) -> None:
    """Atomic: written to a temporary file, then renamed over the old checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "elapsed": elapsed, "run_hash": run_hash, "model": model.state_dict(),
                "optimizers": model.optimizer_state(), "rng": _rng_state()}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, model: Model, run_hash: str) -> tuple[int, float]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        step, elapsed, saved_hash = ckpt["step"], ckpt["elapsed"], ckpt["run_hash"]
    except Exception as err:  # truncated file, wrong format, missing keys
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(err).__name__}: {err}); "
                              f"delete it to restart this run from step 0") from err
    if saved_hash != run_hash:
        raise CheckpointError(f"checkpoint {path} belongs to run config {saved_hash}, not {run_hash}; "
                              f"delete the run directory {path.parent} to train it afresh")
    model.load_state_dict(ckpt["model"])
    model.load_optimizer_state(ckpt["optimizers"])
    _set_rng_state(ckpt["rng"])
    return step, elapsed


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


def train(model: Model, data: torch.Tensor, *, steps: int, batch_size: int, seed: int, run_dir: Path,
          run_hash: str, checkpoint_every: int, log_every: int, desc: str = "train",
          progress: bool = True, stop_at: int | None = None) -> TrainResult:
    """Train ``model`` on ``data`` (N, ...) already on the target device, resuming from ``run_dir``.

    The caller seeds and builds the model (so initial weights come from ``seed``); a checkpoint, if
    present, then overrides weights, optimisers and RNG state. ``stop_at`` simulates a killed job.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / CHECKPOINT
    n = data.shape[0]
    steps_per_epoch = n // batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"batch_size {batch_size} exceeds the training set ({n} examples)")

    start, elapsed, resumed = 0, 0.0, None
    if ckpt_path.exists():
        start, elapsed = load_checkpoint(ckpt_path, model, run_hash)
        resumed = start
    model.train()
    channels_last = data.dim() == 4 and getattr(model, "channels_last", False)

    bar = Progress(steps, start, desc, enabled=progress)
    finite = torch.ones((), dtype=torch.bool, device=data.device)
    sums: dict[str, torch.Tensor] = {}
    since_log, last_losses = 0, {}
    diverged_by, perm, perm_epoch = None, None, -1
    t_start = time.perf_counter()

    def wall() -> float:
        return elapsed + time.perf_counter() - t_start

    step = start
    while step < steps:
        epoch, pos = divmod(step, steps_per_epoch)
        if epoch != perm_epoch:
            perm, perm_epoch = epoch_permutation(seed, epoch, n, data.device), epoch
        x = as_model_input(data[perm[pos * batch_size:(pos + 1) * batch_size]], channels_last)
        model.on_step(step)  # per-step schedules (learning rate, labelled batches); a no-op by default
        losses = model.train_step(x)
        for k, v in losses.items():
            finite &= torch.isfinite(v)
            sums[k] = sums[k] + v if k in sums else v.clone()
        step += 1
        since_log += 1
        if step % log_every == 0 or step == steps:
            if not bool(finite):  # the one sync per log interval
                diverged_by = step
                break
            last_losses = {k: float(v) / since_log for k, v in sums.items()}
            sums, since_log = {}, 0
            bar.update(step, last_losses)
        if step % checkpoint_every == 0 and step < steps:
            if not bool(finite):
                diverged_by = step
                break
            save_checkpoint(ckpt_path, model, step, wall(), run_hash)
        if stop_at is not None and step >= stop_at:
            bar.close()
            raise KeyboardInterrupt(f"stopped at step {step} (simulated kill)")
    bar.close()
    return TrainResult(steps_done=step, diverged=diverged_by is not None, diverged_by_step=diverged_by,
                       wall_time_s=wall(), resumed_from_step=resumed, final_losses=last_losses)
