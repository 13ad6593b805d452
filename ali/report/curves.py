"""Training curves for the report, drawn from each run's ``history.csv`` (see ``ali/train/progress.py``).

Every function returns PNG bytes, or None when there is nothing to draw (the page then says "no
history recorded"). Run directories follow the workflow's layout under the results folder.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ali.train.files import read_csv  # noqa: E402
from ali.train.progress import HISTORY  # noqa: E402
from ali.report.reference import PAPER_MIXTURE  # noqa: E402

EVAL_COLUMNS = ("modes", "hq_pct")  # evaluated every eval_every steps; blank on other rows
NOT_LOSSES = ("step", "wall_s", *EVAL_COLUMNS)
FEW_POINTS = 30  # lines of at most this many points are drawn with markers
BASELINES = ("inverse", "posthoc", "vae")  # the mixture's; any other model but ALI and GAN is a plug-in
COLOURS = {"ali": "tab:blue", "gan": "tab:orange", "vae": "tab:green", "inverse": "tab:red",
           "posthoc": "tab:purple", "ali_kplus1": "tab:blue", "gan_fm": "tab:orange"}

# run directories, relative to the results folder: (glob, names of the path parts after the prefix)
MIXTURE_RUNS = "mixture/*/*/run*"        # mixture/<protocol>/<model>/run<i>
IMAGE_RUNS = "images/*/*/seed*"          # images/<dataset>/<model>/seed<s>
SEMISUP_RUNS = "semisup/*/*/labels*/seed*"  # semisup/<dataset>/<model>/labels<n>/seed<s>


def read_history(run_dir: Path) -> pd.DataFrame | None:
    """A run's history.csv, or None when it has none (or only a header)."""
    path = Path(run_dir) / HISTORY
    if not path.exists():
        return None
    frame = read_csv(path, "training curve", "delete it and rerun the run's training job (it resumes from its "
                                             "checkpoint, if any)")
    return frame if len(frame) else None


def histories(results: Path, pattern: str) -> dict[tuple[str, ...], pd.DataFrame]:
    """{path parts after the results folder: history} for every run directory matching ``pattern``."""
    found = {}
    for run_dir in sorted(Path(results).glob(pattern)):
        frame = read_history(run_dir)
        if frame is not None:
            found[run_dir.relative_to(results).parts[1:]] = frame
    return found


def loss_columns(frames: list[pd.DataFrame]) -> list[str]:
    """Every loss column any of the frames has, in first-seen order."""
    cols = []
    for f in frames:
        cols += [c for c in f.columns if c not in NOT_LOSSES and c not in cols]
    return cols


def marker(column: str, n_points: int) -> str | None:
    """A marker on every point of an evaluation column, and of any line with few points (a line of one or
    two points shows nothing without them)."""
    return "o" if column in EVAL_COLUMNS or n_points <= FEW_POINTS else None


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _panels(n: int, title: str, width: float | None = None):
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width or 4.6 * cols, 3.2 * rows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11)
    return fig, list(axes.flat[:n])


def curves_figure(runs: Mapping[str, tuple[str, pd.DataFrame]], title: str) -> bytes | None:
    """One panel per column (evaluations first, then losses) against step; one line per run.

    ``runs``: line label -> (group, history); lines of a group share a colour and one legend entry.
    """
    if not runs:
        return None
    frames = [f for _, f in runs.values()]
    columns = [c for c in EVAL_COLUMNS if any(c in f and f[c].notna().any() for f in frames)] + loss_columns(frames)
    if not columns:
        return None
    fig, axes = _panels(len(columns), title)
    for ax, column in zip(axes, columns):
        labelled = set()
        for label, (group, frame) in runs.items():
            if column not in frame:
                continue
            points = frame[["step", column]].dropna()
            ax.plot(points["step"], points[column], lw=0.9, alpha=0.75, color=COLOURS.get(group),
                    marker=marker(column, len(points)), ms=3,
                    label=group if group not in labelled else None)
            labelled.add(group)
        ax.set_title(column, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _png(fig)


def mixture_curves(results: Path) -> dict[str, bytes | None]:
    """Per protocol, ALI against GAN (modes, %HQ, losses), then the baselines' losses."""
    found = histories(results, MIXTURE_RUNS)
    out = {}
    for protocol in sorted({p for p, _, _ in found}, key=lambda p: (p != "random", p)):  # the paper's first
        main = {f"{m} {r}": (m, f) for (p, m, r), f in found.items() if p == protocol and m in ("ali", "gan")}
        rest = {f"{m} {r}": (m, f) for (p, m, r), f in found.items() if p == protocol and m in BASELINES}
        plugins = {f"{m} {r}": (m, f) for (p, m, r), f in found.items()
                   if p == protocol and m not in ("ali", "gan", *BASELINES)}
        out[f"{protocol}: ALI against GAN"] = curves_figure(main, f"{protocol} protocol: ALI against GAN, every run")
        out[f"{protocol}: baselines"] = curves_figure(rest, f"{protocol} protocol: inference baselines and VAE")
        if plugins:  # mixture.extra_models
            out[f"{protocol}: plug-in models"] = curves_figure(plugins, f"{protocol} protocol: plug-in models")
    return out


def image_curves(results: Path) -> dict[str, bytes | None]:
    """Per dataset, the losses of every unsupervised image model (one line per seed)."""
    found = histories(results, IMAGE_RUNS)
    return {dataset: curves_figure({f"{m} {s}": (m, f) for (d, m, s), f in found.items() if d == dataset},
                                   f"{dataset}: unsupervised image models")
            for dataset in sorted({d for d, _, _ in found})}


def semisup_curves(results: Path) -> dict[str, bytes | None]:
    """Per dataset and label count, the K+1 models' losses (one line per seed)."""
    found = histories(results, SEMISUP_RUNS)
    keys = sorted({(d, n) for d, _, n, _ in found}, key=lambda k: (k[0], int(k[1].removeprefix("labels"))))
    return {f"{d}, {n.removeprefix('labels')} labels": curves_figure({f"{m} {s}": (m, f) for (d2, m, n2, s), f in found.items()
                                        if (d2, n2) == (d, n)}, f"{d}, {n.removeprefix('labels')} labels: K+1")
            for d, n in keys}


def paired_runs_figure(runs: pd.DataFrame, metric: str = "modes") -> bytes | None:
    """The random protocol's pairs: ALI run i beside GAN run i (same lr, β1, init std), final ``metric``.

    Draws the paper's mean ± std for each model as lines where reference.py has them.
    """
    if runs is None or runs.empty or "protocol_kind" not in runs:
        return None
    sel = runs[(runs["protocol_kind"] == "random") & runs["model"].isin(["ali", "gan"])]
    if sel.empty:
        return None
    protocols = sorted(sel["protocol"].unique())
    width = max(4.6, 0.75 * sel["run"].nunique() + 2)
    fig, axes = _panels(len(protocols), f"random protocol: final {metric} of each paired run", width)
    for ax, protocol in zip(axes, protocols):
        pairs = sel[sel["protocol"] == protocol].pivot_table(index="run", columns="model", values=metric,
                                                             aggfunc="first")
        x = np.arange(len(pairs))
        for offset, model in ((-0.2, "ali"), (0.2, "gan")):
            if model in pairs:
                ax.bar(x + offset, pairs[model].fillna(0), width=0.38, color=COLOURS[model], label=f"ours: {model}")
            ref = PAPER_MIXTURE.get(model, {})
            if metric == "modes" and "modes_mean" in ref:
                mean, std = ref["modes_mean"], ref.get("modes_std", 0.0)
                ax.axhline(mean, color=COLOURS[model], lw=1.2, label=f"paper {model}: mean")
                ax.axhspan(mean - std, mean + std, color=COLOURS[model], alpha=0.12, label=f"paper {model}: ± std")
        ax.set_xticks(x, [f"run {r}" for r in pairs.index], fontsize=8)
        ax.set_title(f"protocol {protocol} (a missing bar: diverged or not evaluated)", fontsize=9)
        ax.set_ylabel(metric)
        ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, not on them
    return _png(fig)
