"""What every experiment's training job does around the training loop.

A run directory holds ``spec.json`` (what determines the numbers), ``checkpoint.pt`` (while
training), ``model.pt`` (the final weights) and ``record.json`` (spec, config hash, provenance,
steps, divergence, wall time, status). Experiments supply how to build the model and the data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

import torch

from ali.models.base import Model
from ali.provenance import config_hash, provenance
from ali.train import resolve_device, seed_everything, train

RECORD, METRICS, MODEL_FILE, SPEC = "record.json", "metrics.json", "model.pt", "spec.json"


def run_training(spec: Mapping, run_dir: Path, *, build: Callable[[Mapping], Model], data: torch.Tensor,
                 device: str = "auto", prepare: Callable[[Model], None] | None = None,
                 extra_record: Mapping | None = None, desc: str = "train", checkpoint_every: int = 10_000, log_every: int = 1000,
                 progress: bool = True, stop_at: int | None = None) -> dict:
    """Seed, build, (prepare), train on ``data`` with resume, save weights and the run record.

    ``prepare`` runs after the model is built from the seed and before training: loading a frozen
    decoder, setting a data-dependent bias. A checkpoint, if present, then overrides all of it.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    run_hash = config_hash(dict(spec))
    record = {"spec": dict(spec), "config_hash": run_hash, "run_dir": str(run_dir),
              "provenance": provenance(dev), "status": "ok", **(extra_record or {})}

    seed_everything(spec["seed"])
    model = build(spec)
    if prepare is not None:
        prepare(model)
    model = model.to(dev)
    data = data.to(dev)
    result = train(model, data, steps=spec["steps"], batch_size=spec["batch_size"], seed=spec["seed"],
                   run_dir=run_dir, run_hash=run_hash, checkpoint_every=checkpoint_every,
                   log_every=log_every, desc=desc, progress=progress, stop_at=stop_at)
    torch.save(model.state_dict(), run_dir / MODEL_FILE)
    (run_dir / SPEC).write_text(json.dumps(spec, indent=2, sort_keys=True))  # after any checkpoint check
    record.update(asdict(result))
    record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if result.diverged:
        record["status"] = "diverged"
    write_record(run_dir, record)
    return record


def skip_run(spec: Mapping, run_dir: Path, reason: str) -> dict:
    """Record a run that could not train (for example: no usable source run), without failing."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {"spec": dict(spec), "config_hash": config_hash(dict(spec)), "run_dir": str(run_dir),
              "provenance": provenance(torch.device("cpu")), "status": "skipped", "reason": reason,
              "steps_done": 0, "diverged": False, "diverged_by_step": None, "wall_time_s": 0.0,
              "resumed_from_step": None, "final_losses": {}}
    write_record(run_dir, record)
    return record


def write_record(run_dir: Path, record: Mapping) -> None:
    (Path(run_dir) / RECORD).write_text(json.dumps(record, indent=2, sort_keys=True))


def read_record(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / RECORD).read_text())


def load_trained(run_dir: Path, build: Callable[[Mapping], Model], device: str | torch.device = "cpu"
                 ) -> tuple[Model, dict]:
    """A finished run's model in eval mode, and its record."""
    record = read_record(run_dir)
    if record["status"] != "ok":
        raise ValueError(f"run {run_dir} has status {record['status']!r}; it has no usable weights")
    model = build(record["spec"])
    model.load_state_dict(torch.load(Path(run_dir) / MODEL_FILE, map_location="cpu", weights_only=True))
    return model.to(device).eval(), record
