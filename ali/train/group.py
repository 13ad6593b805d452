"""A group of runs of one adversarial model trained as one batched model (``ali.engine``), in the
one loop (``ali.train.loop.drive``): the group's side of the lifecycle.

The caller (an experiment) gives the runs' specs, a ``build(spec)`` that makes a run's solo model
(weights from the seed, optimiser from the spec), the training set(s) and an evaluation callback for
the curve; this module imports nothing above it. What a run's numbers depend on:
- initial weights: ``build(spec)`` after ``seed_everything(spec["seed"])``, as a solo run, stacked;
- noise: the run's own ``torch.Generator`` (``ali.engine.step.noise_seed``), drawn in the solo order;
- data order: ``ali.data.batches.epoch_permutation(seed, epoch, n)``, as the solo loop.
So a run trained alone (a group of 1) or in any group ends with the same numbers (CPU, one thread;
tested; with more threads MKL may split a gemm's sums differently for different group sizes).

Each run directory then holds what a solo run's does (``ali.train.record``): ``model.pt`` loadable
into ``build(spec)``, ``spec.json``, ``record.json`` with ``engine``, ``group_size``,
``group_members``, ``precision`` (``wall_time_s`` is the group's) and ``history.csv``. One group
checkpoint (default ``<first run dir>/checkpoint.pt``) makes the group resumable: a rerun ends
bit-identically (CPU) to an uninterrupted run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from ali.engine.batched import BatchedAdversary
from ali.engine.state import FlatLayout, Player
from ali.engine.step import GroupStep
from ali.models.base import Model
from ali.provenance import config_hash
from ali.train.checkpoint import CHECKPOINT
from ali.train.graph import Inputs
from ali.train.loop import drive
from ali.train.progress import HISTORY, History
from ali.train.record import finish_run, new_record
from ali.train.runtime import execution, resolve_device, seed_everything

GROUP_FORMAT = "ali-engine-group-2"  # in the group's checkpoint hash; 2: counter-based noise, batched Adam
SHARED_KEYS = ("experiment", "model", "nets", "batch_size", "steps", "update", "precision")  # data may differ (pacgan)
GROUP_MODELS = ("ali", "gan")
LOSSES = ("loss_d", "loss_g")

# The curve's evaluation: run r's decoder samples (N, x_dim) -> {column: value}.
Evaluate = Callable[[int, np.ndarray], Mapping[str, float]]


def check_group(specs: Sequence[Mapping], run_dirs: Sequence[Path], names: Sequence[str]) -> None:
    """Runs that can train as one batched model: same model and shapes, one directory each."""
    if not specs:
        raise ValueError("a group needs at least one run spec")
    if len(specs) != len(run_dirs):
        raise ValueError(f"{len(specs)} specs but {len(run_dirs)} run directories; give one directory per spec")
    if len({Path(d).resolve() for d in run_dirs}) != len(run_dirs):
        raise ValueError("two runs of the group share a run directory; give each run its own")
    if specs[0]["model"] not in GROUP_MODELS:
        raise ValueError(f"the group engine trains ali and gan runs; {names[0]} is {specs[0]['model']!r} "
                         f"(train it as a solo run)")
    for spec, name in zip(specs[1:], names[1:]):
        for key in SHARED_KEYS:
            if spec.get(key) != specs[0].get(key):
                raise ValueError(f"runs of one group must share {key!r}: {names[0]} has {specs[0].get(key)!r}, "
                                 f"{name} has {spec.get(key)!r}; put them in different groups")


def group_hash(specs: Sequence[Mapping]) -> str:
    """What a group checkpoint belongs to: its members' config hashes, in order."""
    return config_hash({"format": GROUP_FORMAT, "members": [config_hash(dict(s)) for s in specs]})


def build_group(specs: Sequence[Mapping], build: Callable[[Mapping], Model], data: torch.Tensor,
                device: torch.device, bf16: bool = False, adam_kernel: str | None = None) -> GroupStep:
    """The group's batched model and state, from each run's solo model built as a solo run builds it.

    ``data``: one (n, x_dim) training set for every run, or (R, n, x_dim), one per run.
    ``adam_kernel``: one of ``ali.engine.adam.KERNELS``; by default the device's (``kernel_for``).
    """
    solos = []
    for spec in specs:
        seed_everything(spec["seed"])
        solos.append(build(spec))
    template = solos[0]
    model = BatchedAdversary(template)
    d_ids = {id(p) for p in template.d_parameters()}
    named = list(template.named_parameters())
    players = []
    for is_d in (True, False):
        layout = FlatLayout([(n, tuple(p.shape)) for n, p in named if (id(p) in d_ids) == is_d], model.piece_major)
        flat = layout.stack([dict(m.named_parameters()) for m in solos]).to(device)
        players.append(Player(layout, flat, [m.adam.lr for m in solos], [m.adam.torch_betas() for m in solos],
                              adam_kernel))
    buffers = [dict(m.named_buffers()) for m in solos]
    stat_names = [n for n in buffers[0] if n.endswith(("running_mean", "running_var"))]
    stats = {n: torch.stack([b[n] for b in buffers]).to(device) for n in stat_names}
    count_names = [n for n in buffers[0] if n.endswith("num_batches_tracked")]
    return GroupStep(model, players[0], players[1], stats, count_names, data.to(device),
                     [s["seed"] for s in specs], specs[0]["batch_size"], specs[0]["update"], bf16=bf16)


class GroupRun:
    """A ``GroupStep`` as the loop's trainee: each run's history rows, last losses and divergence."""

    def __init__(self, group: GroupStep, run_dirs: Sequence[Path], columns: Sequence[str], evaluate: Evaluate | None,
                 z_eval: torch.Tensor):
        self.group, self.run_dirs, self.columns, self.evaluate, self.z_eval = group, run_dirs, columns, evaluate, z_eval
        self.generators: list[torch.Generator] = []  # none: the engine's noise is a function of (seed, step)
        n = len(run_dirs)
        self.last_losses = torch.full((n, 2), math.nan, dtype=torch.float64)
        self.logged = torch.ones(n, dtype=torch.bool)  # runs whose curve is still being written
        self.since_log = 0
        self.histories: list[History] = []

    def begin(self, resumed_from: int | None) -> None:
        self.histories = [History(d / HISTORY, (*LOSSES, *self.columns), resume_step=resumed_from)
                          for d in self.run_dirs]

    def inputs(self, step: int) -> dict[str, torch.Tensor]:
        self.group.prepare(step)  # each run's order when an epoch starts, outside any graph
        return {}

    def step(self, inputs: Inputs) -> None:
        self.group()

    def account(self, outputs: None) -> None:
        self.since_log += 1  # the step itself sums the losses on the device

    def log(self, step: int, wall: float, evaluate: bool) -> bool:
        """One history row per logged run: losses averaged since the last row, the evaluation if due.

        The one host sync of a log interval. A run that went non-finite gets a last row (nan losses)
        and none after; False once every run has.
        """
        group = self.group
        means = (group.loss_sums.double() / self.since_log).cpu()  # (R, 2)
        alive = group.alive.cpu()
        samples = group.decode(self.z_eval).cpu().numpy() if evaluate and self.evaluate else None  # (R, N, x_dim)
        for r, history in enumerate(self.histories):
            if not self.logged[r]:
                continue
            row = dict(zip(LOSSES, means[r].tolist()))
            if alive[r]:
                self.last_losses[r] = means[r]
                if samples is not None:
                    row.update(self.evaluate(r, samples[r]))
            else:
                self.logged[r] = False
            history.append(step, wall, row)
        group.loss_sums.zero_()
        self.since_log = 0
        return bool(self.logged.any())

    def progress_losses(self) -> dict[str, float]:
        """The progress line: median loss over the runs still training, and how many they are."""
        live = self.last_losses[self.logged]
        if len(live) == 0:
            return {"runs_alive": 0}
        med = live.median(dim=0).values
        return {"loss_d": float(med[0]), "loss_g": float(med[1]), "runs_alive": int(self.logged.sum())}

    def may_checkpoint(self, step: int) -> bool:
        return True  # a diverged run is frozen inside the step; the others go on

    def state_dict(self) -> dict:
        return {"group": self.group.state_dict(), "host": {"last_losses": self.last_losses.clone(),
                                                          "logged": self.logged.clone(), "since_log": self.since_log}}

    def load_state_dict(self, state: dict) -> None:
        self.group.load_state_dict(state["group"])
        host = state["host"]
        self.last_losses, self.logged, self.since_log = host["last_losses"], host["logged"], host["since_log"]

    def snapshot(self) -> dict:
        return self.group.state_dict()

    def restore(self, saved: dict) -> None:
        self.group.load_state_dict(saved)


def train_group(specs: Sequence[Mapping], run_dirs: Sequence[Path], *, build: Callable[[Mapping], Model],
                data: torch.Tensor, names: Sequence[str] | None = None, evaluate: Evaluate | None = None,
                eval_columns: Sequence[str] = (), eval_samples: int = 2500, eval_seed: int = 0,
                device: str = "auto", capture: str = "auto", precision: str = "fp32", checkpoint_every: int = 10_000,
                log_every: int = 1000, eval_every: int = 10_000, progress: bool = True, stop_at: int | None = None,
                checkpoint: Path | None = None) -> list[dict]:
    """Train ``specs`` (one model, see ``check_group``) together into ``run_dirs``; one record per run.

    Resumes from the group checkpoint if there is one. ``evaluate(r, samples)`` adds ``eval_columns``
    to run r's history every ``eval_every`` steps, on the decoder's samples of a fixed z
    (``eval_samples`` draws, seed ``eval_seed``). ``stop_at`` simulates a killed job.
    ``capture``: auto|on|off (CUDA graph); ``precision``: fp32|tf32|bf16 (the last two on CUDA only).
    """
    specs, run_dirs = [dict(s) for s in specs], [Path(d) for d in run_dirs]
    names = list(names) if names is not None else [d.name for d in run_dirs]
    check_group(specs, run_dirs, names)
    dev = resolve_device(device)
    use_capture = execution(precision, capture, dev, specs[0].get("experiment", ""))
    for d in run_dirs:
        d.mkdir(parents=True, exist_ok=True)
    ckpt_path = Path(checkpoint) if checkpoint is not None else run_dirs[0] / CHECKPOINT

    group = build_group(specs, build, data, dev, bf16=precision == "bf16")
    z_eval = torch.randn(eval_samples, group.model.z_dim, generator=torch.Generator().manual_seed(eval_seed)).to(dev)
    trainee = GroupRun(group, run_dirs, eval_columns, evaluate, z_eval)
    what = "run" if len(specs) == 1 else f"group of {len(specs)} runs"
    desc = names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]} ({len(names)} runs as one)"
    done = drive(trainee, steps=specs[0]["steps"], checkpoint=ckpt_path, owner=group_hash(specs), device=dev,
                 capture=use_capture, precision=precision, checkpoint_every=checkpoint_every, log_every=log_every,
                 eval_every=eval_every, desc=desc, what=what, label="group-", progress=progress, stop_at=stop_at)
    meta = {"wall_time_s": done.wall_time_s, "resumed_from_step": done.resumed_from_step, "engine": done.engine,
            "group_size": len(specs), "group_members": names, "precision": precision,
            "group_checkpoint": str(ckpt_path)}
    return [finish_member(trainee, r, spec, run_dir, build, done.steps_done, meta, dev)
            for r, (spec, run_dir) in enumerate(zip(specs, run_dirs))]


def finish_member(trainee: GroupRun, r: int, spec: dict, run_dir: Path, build: Callable[[Mapping], Model],
                  step: int, meta: dict, device: torch.device) -> dict:
    """Run r's ``model.pt``, ``spec.json`` and ``record.json``, as a solo run's (``ali.train.record``)."""
    bad = int(trainee.group.first_bad[r]) or None
    model = build(spec)  # the solo module: model.pt must load into it
    model.load_state_dict(trainee.group.run_state_dict(r))
    losses = trainee.last_losses[r].tolist()
    record = new_record(spec, run_dir, device, status="diverged" if bad else "ok", steps_done=bad or step,
                        diverged=bad is not None, diverged_by_step=bad,
                        final_losses={} if math.isnan(losses[0]) else dict(zip(LOSSES, losses)), **meta)
    return finish_run(run_dir, spec, model.state_dict(), record)
