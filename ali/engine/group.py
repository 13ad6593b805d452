"""Train a group of mixture runs of one model (ALI or GAN) as one batched model.

    from pathlib import Path
    from ali.config import load_config
    from ali.engine.group import train_group
    from ali.experiments import mixture as mx
from ali.models.base import CAPTURE_MODES, PRECISIONS

    plan = mx.plan(load_config("config/paper.yaml"))
    keys = [f"random/ali/run{i}" for i in range(10)]
    records = train_group([plan[k] for k in keys], [Path("results/mixture") / k for k in keys],
                          device="auto", capture="auto", precision="fp32")

or the same as ``python -c "..."``. The runs share the architecture, data, batch size, steps and
update rule; seeds, learning rates, betas and init std may differ. What a run's numbers depend on:
- initial weights: ``mixture.build(spec)`` after ``seed_everything(spec["seed"])``, as the solo path
  (``ali.experiments.runs.run_training``) builds them, stacked;
- noise: ``ali.engine.noise``, a function of (the run's seed, the step), in the solo model's input order;
- data order: ``ali.train.epoch_permutation(seed, epoch, n)``, as the solo loop.
So a run trained alone (a group of 1) or in any group ends with the same numbers (CPU, one thread;
tested; with more threads MKL may split a gemm's sums differently for different group sizes).

Each run directory then holds what the solo path writes (``model.pt`` loadable into
``mixture.build(spec)``, ``spec.json``, ``record.json`` with the same keys plus ``engine``,
``group_size``, ``group_members``, ``precision``; ``wall_time_s`` is the group's) and ``history.csv`` (``ali.history``). While training,
one atomic group checkpoint (default ``<first run dir>/group_checkpoint.pt``) makes the group
resumable: a rerun ends bit-identically (CPU) to an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ali.engine.batched import BatchedAdversary
from ali.engine.capture import StepRunner
from ali.engine.state import FlatLayout, Player
from ali.engine.step import GroupStep
from ali.eval.coverage import paper_modes, strict_metrics
from ali.experiments import mixture as mx
from ali.models.base import CAPTURE_MODES, PRECISIONS
from ali.experiments.runs import MODEL_FILE, SPEC, write_record
from ali.history import HISTORY, History
from ali.optim import AdamConfig
from ali.provenance import config_hash, provenance
from ali.train import CHECKPOINT, CheckpointError, Progress, fp32_math, resolve_device, seed_everything

GROUP_CHECKPOINT = CHECKPOINT  # the solo loop's name, in the group's first run directory
CHECKPOINT_FORMAT = "ali-engine-group-2"  # 2: counter-based noise (no generator states), batched Adam
SHARED_KEYS = ("experiment", "model", "nets", "batch_size", "steps", "update", "precision", "capture")  # data may differ (pacgan)
LOSSES = ("loss_d", "loss_g")
HISTORY_COLUMNS = (*LOSSES, "modes", "hq_pct")
# The training curve's coverage: OUR CHOICE of a cheap probe, the strict metric's sample size and HQ radius.
EVAL_SAMPLES, EVAL_SEED, HQ_STDS = 2500, 0, 3.0


# ------------------------------------------------------------------------------------------ checks
def run_key(spec: Mapping) -> str:
    """The run's name in the plan: ``<protocol>/<model>/run<i>``."""
    return f"{spec['protocol']}/{spec['model']}/run{spec['run']}"


def check_group(specs: Sequence[Mapping], run_dirs: Sequence[Path]) -> None:
    """Runs that can train as one batched model: same model and shapes, one directory each."""
    if not specs:
        raise ValueError("a group needs at least one run spec")
    if len(specs) != len(run_dirs):
        raise ValueError(f"{len(specs)} specs but {len(run_dirs)} run directories; give one directory per spec")
    if len({Path(d).resolve() for d in run_dirs}) != len(run_dirs):
        raise ValueError("two runs of the group share a run directory; give each run its own")
    if specs[0]["model"] not in ("ali", "gan"):
        raise ValueError(f"the group engine trains ali and gan runs; {run_key(specs[0])} is {specs[0]['model']!r} "
                         f"(train it with mixture.train_run)")
    for spec in specs[1:]:
        for key in SHARED_KEYS:
            if spec[key] != specs[0][key]:
                raise ValueError(f"runs of one group must share {key!r}: {run_key(specs[0])} has {specs[0][key]!r}, "
                                 f"{run_key(spec)} has {spec[key]!r}; put them in different groups")


def resolve_capture(capture: str, device: torch.device) -> bool:
    """``auto``: capture on CUDA, eager elsewhere; ``on`` needs CUDA."""
    if capture not in CAPTURE_MODES:
        raise ValueError(f"capture must be one of {CAPTURE_MODES}, got {capture!r}")
    if capture == "on" and device.type != "cuda":
        raise ValueError(f"capture 'on' needs a CUDA device, not {device}; use capture 'auto' or 'off'")
    return capture == "on" or (capture == "auto" and device.type == "cuda")


def check_precision(precision: str, device: torch.device) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "fp32" and device.type != "cuda":
        raise ValueError(f"precision {precision!r} needs a CUDA device; on {device.type} only 'fp32' is allowed")


def group_hash(specs: Sequence[Mapping]) -> str:
    """What a group checkpoint belongs to: its members' config hashes, in order."""
    return config_hash({"format": CHECKPOINT_FORMAT, "members": [config_hash(dict(s)) for s in specs]})


# ------------------------------------------------------------------------------------------ build
def training_sets(specs: Sequence[Mapping], device: torch.device) -> torch.Tensor:
    """Every run's training set: one (n, x_dim) tensor when the runs share it, else (R, n, x_dim)
    (PacGAN's protocol draws a fresh set per run)."""
    datas = [mx.mixture_data(s) for s in specs]
    if all(d == datas[0] for d in datas):
        return torch.from_numpy(mx.train_set(datas[0])[0]).to(device)
    if len({d.n_train for d in datas}) != 1:
        raise ValueError("runs of one group must have training sets of one size (mixture.data.n_train)")
    return torch.stack([torch.from_numpy(mx.train_set(d)[0]) for d in datas]).to(device)


def build_group(specs: Sequence[Mapping], device: torch.device, bf16: bool = False,
                adam_kernel: str | None = None) -> GroupStep:
    """The group's batched model and state, from each run's solo model built exactly as the solo path does.

    ``adam_kernel``: ``ali.engine.adam.KERNELS``; by default the device's (``kernel_for``)."""
    solos = []
    for spec in specs:
        seed_everything(spec["seed"])
        solos.append(mx.build(spec))
    template = solos[0]
    model = BatchedAdversary(template)
    d_ids = {id(p) for p in template.d_parameters()}
    named = list(template.named_parameters())
    players = []
    for is_d in (True, False):
        layout = FlatLayout([(n, tuple(p.shape)) for n, p in named if (id(p) in d_ids) == is_d], model.piece_major)
        flat = layout.stack([dict(m.named_parameters()) for m in solos]).to(device)
        adams = [AdamConfig(**s["adam"]) for s in specs]
        players.append(Player(layout, flat, [a.lr for a in adams], [a.torch_betas() for a in adams], adam_kernel))
    buffers = [dict(m.named_buffers()) for m in solos]
    stat_names = [n for n in buffers[0] if n.endswith(("running_mean", "running_var"))]
    stats = {n: torch.stack([b[n] for b in buffers]).to(device) for n in stat_names}
    count_names = [n for n in buffers[0] if n.endswith("num_batches_tracked")]
    return GroupStep(model, players[0], players[1], stats, count_names, training_sets(specs, device),
                     [s["seed"] for s in specs], specs[0]["batch_size"],
                     specs[0]["update"], bf16=bf16)


# ------------------------------------------------------------------------------------- checkpoint
def save_checkpoint(path: Path, group: GroupStep, *, step: int, elapsed: float, ghash: str, members: list[str],
                    host: dict) -> None:
    """Atomic: written to a temporary file, then renamed over the old checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save({"format": CHECKPOINT_FORMAT, "group_hash": ghash, "members": members, "step": step,
                "elapsed": elapsed, "state": group.state_dict(), "host": host}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, group: GroupStep, ghash: str) -> tuple[int, float, dict]:
    """Restore ``group`` from ``path``; (step, elapsed seconds, host-side log state)."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        step, elapsed, saved_hash, members = ckpt["step"], ckpt["elapsed"], ckpt["group_hash"], ckpt["members"]
    except Exception as err:  # truncated file, wrong format, missing keys
        raise CheckpointError(f"group checkpoint {path} is unreadable ({type(err).__name__}: {err}); "
                              f"delete it to restart this group from step 0") from err
    if saved_hash != ghash:
        raise CheckpointError(f"group checkpoint {path} belongs to another group or config (hash {saved_hash}, "
                              f"members {members}), not this one ({ghash}); delete {path} to train this group afresh")
    group.load_state_dict(ckpt["state"])
    return step, elapsed, ckpt["host"]


# ------------------------------------------------------------------------------------------ train
class LogBook:
    """Host-side logging state: each run's last finite loss means, and which runs are still logged."""

    def __init__(self, n_runs: int, host: dict | None = None):
        if host is None:
            self.last_losses = torch.full((n_runs, 2), math.nan, dtype=torch.float64)
            self.logged = torch.ones(n_runs, dtype=torch.bool)  # runs whose curve is still being written
            self.since_log = 0
        else:
            self.last_losses, self.logged, self.since_log = host["last_losses"], host["logged"], host["since_log"]

    def state(self) -> dict:
        return {"last_losses": self.last_losses.clone(), "logged": self.logged.clone(), "since_log": self.since_log}


def coverage(samples: np.ndarray, spec: Mapping, hq_stds: float) -> dict[str, float]:
    """The training curve's modes (paper count) and % high quality for one run's samples (N, 2)."""
    data = mx.mixture_data(spec)
    return {"modes": paper_modes(data, samples), "hq_pct": strict_metrics(data, samples, hq_stds)["hq_pct"]}


def write_rows(group: GroupStep, book: LogBook, histories: list[History], specs: Sequence[Mapping], step: int,
               wall: float, z_eval: torch.Tensor | None, hq_stds: float) -> None:
    """One history row per logged run: losses averaged since the last row, coverage if ``z_eval``.

    The one host sync of a log interval. A run that went non-finite gets a last row (nan losses) and none after.
    """
    means = (group.loss_sums.double() / book.since_log).cpu()  # (R, 2)
    alive = group.alive.cpu()
    samples = group.decode(z_eval).cpu().numpy() if z_eval is not None else None  # (R, N, 2)
    for r, history in enumerate(histories):
        if not book.logged[r]:
            continue
        row = dict(zip(LOSSES, means[r].tolist()))
        if alive[r]:
            book.last_losses[r] = means[r]
            if samples is not None:
                row.update(coverage(samples[r], specs[r], hq_stds))
        else:
            book.logged[r] = False
        history.append(step, wall, row)
    group.loss_sums.zero_()
    book.since_log = 0


def train_group(specs: Sequence[Mapping], run_dirs: Sequence[Path], *, device: str = "auto", capture: str = "auto",
                precision: str = "fp32", checkpoint_every: int = 10_000, log_every: int = 1000,
                eval_every: int = 10_000, progress: bool = True, stop_at: int | None = None,
                checkpoint: Path | None = None, eval_samples: int = EVAL_SAMPLES, eval_seed: int = EVAL_SEED,
                hq_stds: float = HQ_STDS) -> list[dict]:
    """Train ``specs`` (one model, see ``check_group``) together into ``run_dirs``; one record per run.

    Resumes from the group checkpoint if there is one. ``stop_at`` simulates a killed job (raises
    KeyboardInterrupt after that step, as ``ali.train.train``). ``capture``: auto|on|off (CUDA graph);
    ``precision``: fp32|tf32|bf16 (the last two on CUDA only).
    """
    specs, run_dirs = [dict(s) for s in specs], [Path(d) for d in run_dirs]
    check_group(specs, run_dirs)
    for name, every in (("checkpoint_every", checkpoint_every), ("log_every", log_every), ("eval_every", eval_every)):
        if every < 1:
            raise ValueError(f"{name} must be a positive number of steps, got {every}")
    dev = resolve_device(device)
    use_capture = resolve_capture(capture, dev)
    check_precision(precision, dev)
    for d in run_dirs:
        d.mkdir(parents=True, exist_ok=True)
    ckpt_path = Path(checkpoint) if checkpoint is not None else run_dirs[0] / GROUP_CHECKPOINT
    ghash, members = group_hash(specs), [run_key(s) for s in specs]

    group = build_group(specs, dev, bf16=precision == "bf16")
    start, elapsed, resumed, host = 0, 0.0, None, None
    if ckpt_path.exists():
        start, elapsed, host = load_checkpoint(ckpt_path, group, ghash)
        resumed = start
    book = LogBook(len(specs), host)
    histories = [History(d / HISTORY, HISTORY_COLUMNS, resume_step=resumed) for d in run_dirs]
    z_eval = torch.randn(eval_samples, group.model.z_dim, generator=torch.Generator().manual_seed(eval_seed)).to(dev)
    runner = StepRunner(group, [], use_capture)  # no generators: the noise is a function of (seed, step)
    steps = specs[0]["steps"]
    desc = members[0] if len(members) == 1 else f"{members[0]} .. {members[-1]} ({len(members)} runs as one)"
    bar = Progress(steps, start, desc, enabled=progress)
    t_start = time.perf_counter()

    def wall() -> float:
        return elapsed + time.perf_counter() - t_start

    with fp32_math(precision, dev):  # fp32 means IEEE fp32 on CUDA; tf32 lets cuBLAS and cuDNN use TF32
        try:
            step = start
            while step < steps:
                group.prepare(step)
                runner()
                step += 1
                book.since_log += 1
                eval_due = step % eval_every == 0 or step == steps
                if eval_due or step % log_every == 0:
                    write_rows(group, book, histories, specs, step, wall(), z_eval if eval_due else None, hq_stds)
                    bar.update(step, _progress_losses(book))
                    if not book.logged.any():  # every run diverged: nothing left to train
                        break
                if step % checkpoint_every == 0 and step < steps:
                    save_checkpoint(ckpt_path, group, step=step, elapsed=wall(), ghash=ghash, members=members,
                                    host=book.state())
                if stop_at is not None and step >= stop_at:
                    raise KeyboardInterrupt(f"stopped at step {step} (simulated kill)")
        finally:
            bar.close()

    meta = {"wall_time_s": wall(), "resumed_from_step": resumed, "engine": runner.engine, "group_size": len(specs),
            "group_members": members, "precision": precision, "group_checkpoint": str(ckpt_path),
            "provenance": provenance(dev)}
    return [write_run(group, r, spec, run_dir, book, step, meta) for r, (spec, run_dir) in enumerate(zip(specs, run_dirs))]


def write_run(group: GroupStep, r: int, spec: dict, run_dir: Path, book: LogBook, step: int, meta: dict) -> dict:
    """Run r's ``model.pt``, ``spec.json`` and ``record.json``, as ``runs.run_training`` writes them.

    The record has the solo record's keys plus ``engine``, ``group_size``, ``group_members``,
    ``precision`` and ``group_checkpoint``; ``wall_time_s`` is the whole group's.
    """
    bad = int(group.first_bad[r]) or None
    model = mx.build(spec)  # the solo module: model.pt must load into it
    model.load_state_dict(group.run_state_dict(r))
    torch.save(model.state_dict(), run_dir / MODEL_FILE)
    (run_dir / SPEC).write_text(json.dumps(spec, indent=2, sort_keys=True))
    losses = book.last_losses[r].tolist()
    record = {"spec": spec, "config_hash": config_hash(spec), "run_dir": str(run_dir),
              "status": "diverged" if bad else "ok", "steps_done": bad or step, "diverged": bad is not None,
              "diverged_by_step": bad, "final_losses": {} if math.isnan(losses[0]) else dict(zip(LOSSES, losses)),
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **meta}
    write_record(run_dir, record)
    return record


def _progress_losses(book: LogBook) -> dict[str, float]:
    """The progress line: median loss over the runs still training, and how many they are."""
    live = book.last_losses[book.logged]
    if len(live) == 0:
        return {"runs_alive": 0}
    med = live.median(dim=0).values
    return {"loss_d": float(med[0]), "loss_g": float(med[1]), "runs_alive": int(book.logged.sum())}
