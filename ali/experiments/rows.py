"""The contract's tidy-row step (compare_gan style): one row per run, or per SVM trial, of every run directory.

The experiment named in a run's spec supplies its settings columns, metric rows and ``our_choices``
(``ali.experiments.base.Experiment``); the status, divergence and provenance columns are the same
for every experiment. The report's tables (``ali.report.tables``) are group-bys over these frames.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ali.experiments.base import experiment, read_json
from ali.train.record import METRICS, read_record


def scale_note(preset: str) -> str:
    if preset == "paper":
        return "paper preset"
    return f"{preset} preset: tiny budgets and data, NOT comparable to the published numbers"


# Columns of the run record and its provenance, the same for every experiment.
def _record_columns(record: dict, run_dir: Path) -> dict:
    prov = record["provenance"]
    return {
        "source_run": record.get("source_run", ""), "wall_time_s": record["wall_time_s"],
        "resumed_from_step": record.get("resumed_from_step"), "engine": record.get("engine", "eager"),
        "group_size": record.get("group_size", 1),  # wall_time_s is the whole group's
        "precision": record.get("precision", record["spec"].get("precision", "fp32")),
        "device": prov["device"], "threads": prov["threads"], "code_version": prov["code_version"],
        **{f"version_{k}": v for k, v in prov["packages"].items()},
        "config_hash": record["config_hash"],
    }


def run_rows(run_dir: Path) -> list[dict]:
    """A run's tidy rows (compare_gan style): its settings, every metric, status and provenance.

    The experiment named in the run's spec supplies the settings columns, the metric rows (one,
    or one per SVM trial) and its ``our_choices``; everything else is the same for every experiment.
    """
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    metrics_path = run_dir / METRICS
    metrics = read_json(metrics_path) if metrics_path.exists() else {}
    spec = record["spec"]
    exp = experiment(spec["experiment"])
    head = {"preset": spec["preset"], **exp.spec_columns(spec), "steps_planned": spec.get("steps"),
            "steps_done": record.get("steps_done"), "status": metrics.get("status", record["status"]),
            "diverged": bool(record.get("diverged", False)), "diverged_by_step": record.get("diverged_by_step")}
    tail = {**_record_columns(record, run_dir), "our_choices": "; ".join(exp.our_choices(spec)),
            "scale": scale_note(spec["preset"])}
    return [{**head, **fragment, **tail} for fragment in exp.metric_rows(metrics)]


def runs_frame(run_dirs: list[Path], sort: list[str]) -> pd.DataFrame:
    """Every run's rows, sorted by ``sort``."""
    rows = [row for d in run_dirs for row in run_rows(Path(d))]
    if not rows:  # a report given no runs of one kind (Table 1 with only its K+1 rows, say)
        return pd.DataFrame()
    return pd.DataFrame(rows).sort_values(sort, kind="stable").reset_index(drop=True)
