"""Training curves: each run appends a tidy ``history.csv`` to its run directory.

One row per logged step: ``step``, ``wall_s`` (seconds of training so far), each loss averaged over
the steps since the previous row, then any evaluation columns (for the mixture: ``modes`` and
``hq_pct`` on a fixed z, every ``eval_every`` steps; blank on rows without an evaluation).
On resume, rows after the checkpoint's step are dropped (those steps are trained again), so a killed
and resumed run ends with the same rows as an uninterrupted one. Read it with
``pd.read_csv(run_dir / "history.csv")``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

HISTORY = "history.csv"


class History:
    """Append-only writer of one run's ``history.csv`` with a fixed header."""

    def __init__(self, path: Path, columns: Sequence[str], resume_step: int | None = None):
        self.path = Path(path)
        self.columns = ["step", "wall_s", *[c for c in columns if c not in ("step", "wall_s")]]
        if resume_step is None or not self.path.exists():
            self._rewrite([])
            return
        with open(self.path, newline="") as f:
            reader = csv.DictReader(f)
            old = list(reader)
            same_header = reader.fieldnames == self.columns
        if not same_header:  # written by another version of the code: start the curve afresh
            old = []
        self._rewrite([r for r in old if int(r["step"]) <= resume_step])

    def _rewrite(self, rows: list[Mapping]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        tmp.replace(self.path)

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
