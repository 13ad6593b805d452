"""The one record writer and reader: what a run directory holds once its job is done.

A run directory holds ``spec.json`` (what determines the numbers), ``checkpoint.pt`` (while
training), ``model.pt`` (the final weights), ``record.json`` (spec, config hash, provenance, steps,
divergence, wall time, status, engine) and, after evaluation, ``metrics.json``. A run that could not
train gets a skip record. Every file is written atomically (``ali.train.files``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from ali.models.base import Model
from ali.provenance import config_hash, provenance
from ali.train.files import atomic_write, read_json, read_tensors, unusable, write_json, write_text

RECORD, METRICS, MODEL_FILE, SPEC = "record.json", "metrics.json", "model.pt", "spec.json"


def new_record(spec: Mapping, run_dir: Path, device: torch.device, **fields) -> dict:
    """The keys every record starts with: spec, its hash, where, on what, status ok; then ``fields``."""
    return {"spec": dict(spec), "config_hash": config_hash(dict(spec)), "run_dir": str(run_dir),
            "provenance": provenance(device), "status": "ok", **fields}


def finish_run(run_dir: Path, spec: Mapping, weights: Mapping[str, torch.Tensor], record: dict) -> dict:
    """A trained run's ``model.pt``, ``spec.json`` and ``record.json`` (stamped ``finished_at``)."""
    run_dir = Path(run_dir)
    atomic_write(run_dir / MODEL_FILE, lambda f: torch.save(weights, f))
    write_text(run_dir / SPEC, json.dumps(dict(spec), indent=2, sort_keys=True))
    record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_record(run_dir, record)
    return record


def skip_run(spec: Mapping, run_dir: Path, reason: str) -> dict:
    """Record a run that could not train (for example: no usable source run), without failing."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = new_record(spec, run_dir, torch.device("cpu"), status="skipped", reason=reason, steps_done=0,
                        diverged=False, diverged_by_step=None, wall_time_s=0.0, resumed_from_step=None,
                        final_losses={})
    write_record(run_dir, record)
    return record


def write_record(run_dir: Path, record: Mapping) -> None:
    write_json(Path(run_dir) / RECORD, record)


RETRAIN = "delete it and rerun the job that trains this run (it resumes from the run's checkpoint, if any)"
RECORD_KEYS = ("spec", "config_hash", "status")


def read_record(run_dir: Path) -> dict:
    """A run's record.json; a missing, truncated or foreign one is one ``UnusableFileError`` line."""
    path = Path(run_dir) / RECORD
    record = read_json(path, "record", RETRAIN)
    if not isinstance(record, dict) or any(k not in record for k in RECORD_KEYS):
        raise unusable(path, "record", RETRAIN, f"not a run record of this suite (it needs {', '.join(RECORD_KEYS)})")
    return record


def load_trained(run_dir: Path, build: Callable[[Mapping], Model], device: str | torch.device = "cpu"
                 ) -> tuple[Model, dict]:
    """A finished run's model in eval mode, and its record."""
    record = read_record(run_dir)
    if record["status"] != "ok":
        raise ValueError(f"run {run_dir} has status {record['status']!r}; it has no usable weights")
    model = build(record["spec"])
    model.load_state_dict(read_tensors(Path(run_dir) / MODEL_FILE, "weights",
                                       f"delete it and {RECORD} beside it, and rerun the job that trains this run"))
    return model.to(device).eval(), record
