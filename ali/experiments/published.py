"""Paper-scale results committed to the repository: ``results/published/mixture/<protocol>/``.

A protocol is published whole or not at all: every run the paper plan has for it must be in the
rows, from the paper preset, finished ok or diverged (diverged runs are kept as recorded, so the
summary is never a mean over the runs that happened to finish). The folder holds that protocol's
run rows, its summary rows, its Figure 8 if given, and ``provenance.json`` gathered from the rows.
The workflow never writes there and never reads it as a job input, so a checkout's timestamps
cannot make Snakemake retrain a published protocol.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ali.config import ConfigError
from ali.train.files import atomic_write, read_csv, write_json

PAPER = "paper"
MANUAL_REPORTS = frozenset({"publish"})  # reports a person runs; no workflow rule may call them
FINISHED = ("ok", "diverged")
RUNS_FILE, TABLE_FILE, FIGURE_FILE = "mixture_runs.csv", "mixture.csv", "figure8.png"
PROVENANCE_FILE = "provenance.json"


def run_key(row: Mapping) -> str:
    return f"{row['protocol']}/{row['model']}/run{int(row['run'])}"


def protocol_rows(runs: pd.DataFrame, protocol: str, planned: Iterable[str], where: str) -> pd.DataFrame:
    """The rows of ``protocol``, refused unless they are exactly its paper-plan runs, each finished."""
    rows = runs[runs["protocol"] == protocol] if "protocol" in runs else runs.iloc[0:0]
    fix = f"train every run of protocol {protocol!r} with the paper preset, then rebuild {where}"
    not_paper = sorted(set(rows["preset"].astype(str)) - {PAPER}) if "preset" in rows else ["none"]
    if not_paper:
        raise ConfigError(f"{where}: rows of protocol {protocol!r} are from the {', '.join(not_paper)} preset, "
                          f"not the paper's; {fix}")
    keys = [run_key(r) for _, r in rows.iterrows()]
    missing, extra = sorted(set(planned) - set(keys)), sorted(set(keys) - set(planned))
    if missing or extra or len(keys) != len(set(keys)):
        what = (f"misses {len(missing)} planned run(s) ({', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''})"
                if missing else f"has runs outside the paper plan or twice ({', '.join(extra[:3]) or 'duplicates'})")
        raise ConfigError(f"{where}: protocol {protocol!r} {what}; {fix}")
    unfinished = rows[~rows["status"].isin(FINISHED)]
    if len(unfinished):
        first = unfinished.iloc[0]
        raise ConfigError(f"{where}: run {run_key(first)} has status {first['status']!r} (not ok or diverged); {fix}")
    return rows.sort_values(["model", "run"], kind="stable")


def summary_rows(table: pd.DataFrame, rows: pd.DataFrame, protocol: str, where: str) -> pd.DataFrame:
    """The summary rows of ``protocol``, refused unless each counts exactly the published runs."""
    summary = table[table["protocol"] == protocol] if "protocol" in table else table.iloc[0:0]
    counts = rows.groupby("model").size().to_dict()
    shown = dict(zip(summary.get("model", []), summary.get("n_runs", [])))
    if {m: int(n) for m, n in shown.items()} != counts or set(summary.get("preset", [])) != {PAPER}:
        raise ConfigError(f"{where}: its protocol {protocol!r} rows do not summarise the paper-preset runs given "
                          f"(runs per model {counts}, table says {shown}); rebuild it with `ali report mixture-tables`")
    return summary


def _unique(rows: pd.DataFrame, column: str) -> list:
    return sorted({str(v) for v in rows[column].dropna()}) if column in rows else []


def provenance(rows: pd.DataFrame, sources: Mapping[str, bytes]) -> dict:
    """What the published numbers came from, read off the run rows (nothing typed by hand)."""
    versions = {c[len("version_"):]: _unique(rows, c) for c in rows if c.startswith("version_")}
    return {
        "published_at_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_runs": len(rows), "status": {str(k): int(v) for k, v in rows["status"].value_counts().items()},
        "code_version": _unique(rows, "code_version"), "package_versions": versions,
        "device": _unique(rows, "device"), "precision": _unique(rows, "precision"), "engine": _unique(rows, "engine"),
        "threads": _unique(rows, "threads"),
        "wall_time_s_sum": float(rows["wall_time_s"].sum()) if "wall_time_s" in rows else None,
        "config_hashes": {run_key(r): str(r.get("config_hash", "")) for _, r in rows.iterrows()},
        "sources_sha256": {name: hashlib.sha256(data).hexdigest() for name, data in sources.items()},
    }


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode()


def publish_protocol(runs_path: Path, table_path: Path, figure_path: Path | None, protocol: str,
                     planned: Iterable[str], out_dir: Path) -> Path:
    """Check one protocol's rows against its paper-plan runs and write its published folder."""
    runs_path, table_path = Path(runs_path), Path(table_path)
    fix = "rebuild it with `ali report mixture-tables`"
    rows = protocol_rows(read_csv(runs_path, "run table", fix), protocol, list(planned), str(runs_path))
    summary = summary_rows(read_csv(table_path, "summary table", fix), rows, protocol, str(table_path))
    figure = Path(figure_path).read_bytes() if figure_path else None
    sources = {runs_path.name: runs_path.read_bytes(), table_path.name: table_path.read_bytes(),
               **({Path(figure_path).name: figure} if figure is not None else {})}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in ((RUNS_FILE, _csv_bytes(rows)), (TABLE_FILE, _csv_bytes(summary)), (FIGURE_FILE, figure)):
        if data is not None:
            atomic_write(out_dir / name, lambda f, data=data: f.write(data))
        else:
            (out_dir / name).unlink(missing_ok=True)  # a figure from an earlier publication of other runs
    write_json(out_dir / PROVENANCE_FILE, {"protocol": protocol, **provenance(rows, sources)})  # last: marks it whole
    return out_dir
