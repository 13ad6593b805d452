"""What a training run shows while it runs: a progress bar or lines, and its ``history.csv`` curve.

``Progress``: a tqdm bar on a terminal; otherwise one plain line every log interval (logs, SLURM).
``log_averages``: a log interval's loss means with one host sync.

Training curves: each run appends a tidy ``history.csv`` to its run directory.

One row per logged step: ``step``, ``wall_s`` (seconds of training so far), each loss averaged over
the steps since the previous row, then any evaluation columns (for the mixture: ``modes`` and
``hq_pct`` on a fixed z, every ``eval_every`` steps; blank on rows without an evaluation).
On resume, rows after the checkpoint's step are dropped (those steps are trained again), and so is a
last row cut short by a kill or a full disk, so a killed and resumed run ends with the same rows as
an uninterrupted one. Read it with
``pd.read_csv(run_dir / "history.csv")``.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from ali.train.files import write_text

HISTORY = "history.csv"


class History:
    """Append-only writer of one run's ``history.csv`` with a fixed header."""

    def __init__(self, path: Path, columns: Sequence[str], resume_step: int | None = None):
        self.path = Path(path)
        self.columns = ["step", "wall_s", *[c for c in columns if c not in ("step", "wall_s")]]
        if resume_step is None or not self.path.exists():
            self._rewrite([])
            return
        text = self.path.read_text()
        if not text.endswith("\n"):  # a row cut short by a kill or a full disk: that step trains again
            text = text[:text.rfind("\n") + 1]
        reader = csv.DictReader(io.StringIO(text, newline=""))
        old = list(reader)
        same_header = reader.fieldnames == self.columns
        if not same_header:  # written by another version of the code: start the curve afresh
            old = []
        self._rewrite([r for r in old if int(r["step"]) <= resume_step])

    def _rewrite(self, rows: list[Mapping]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.path, text.getvalue())

    def append(self, step: int, wall_s: float, values: Mapping[str, float | int | None]) -> None:
        """One row; unknown keys are an error (the header is fixed), missing ones stay blank."""
        unknown = set(values) - set(self.columns)
        if unknown:
            raise KeyError(f"history columns {sorted(unknown)} are not in {self.path.name}'s header {self.columns}")
        row = {"step": int(step), "wall_s": f"{wall_s:.3f}"}
        for key, value in values.items():
            row[key] = "" if value is None else value  # a non-finite loss is written as nan/inf
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns, lineterminator="\n").writerow(row)


class Progress:
    """A tqdm bar on a terminal; otherwise one plain line every ``log_every`` steps (logs, SLURM)."""

    def __init__(self, total: int, start: int, desc: str, enabled: bool = True):
        self.total, self.desc, self.enabled = total, desc, enabled
        self.tty = enabled and sys.stderr.isatty()
        self.bar = None
        self.t0, self.s0 = time.perf_counter(), start
        if self.tty:
            from tqdm import tqdm  # only on a terminal

            self.bar = tqdm(total=total, initial=start, desc=desc, unit="step", dynamic_ncols=True)

    def update(self, step: int, losses: Mapping[str, float]) -> None:
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


def log_averages(sums: Mapping[str, torch.Tensor], n: int, finite: torch.Tensor) -> tuple[dict[str, float], bool]:
    """Each loss averaged over the ``n`` steps since the last log, and whether every step was finite:
    one host sync."""
    values = torch.stack([*sums.values(), finite.float()]).tolist()
    return {k: v / n for k, v in zip(sums, values)}, bool(values[-1])
