"""The report page's block on plug-in mixture models (``mixture.extra_models``): their rows of
``mixture.csv`` beside ALI's and GAN's under the same protocols. No published number exists for a
plug-in, so it gets no verdict; Figure 8 shows each one's best run in a column after the paper's four.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

import pandas as pd

from ali.report.comparisons import read_table

METRICS = {"modes": "modes (paper count)", "strict_modes": "strict modes", "hq_pct": "% high quality",
           "reverse_kl": "reverse KL", "recon_sqerr": "reconstruction sq. error"}
BESIDE = ("ali", "gan")  # the built-in rows shown next to a plug-in's


def plugin_models(runs: pd.DataFrame | None) -> pd.DataFrame:
    """One row per plug-in model of ``mixture_runs.csv``: model, import path, version."""
    columns = ["model", "model_class", "model_version"]
    if runs is None or "model_class" not in runs:
        return pd.DataFrame(columns=columns)
    plugged = runs[runs["model_class"].notna() & (runs["model_class"].astype(str) != "")]
    return plugged.reindex(columns=columns).drop_duplicates("model")


def _cell(mean: float, std: float) -> str:
    if not math.isfinite(mean):
        return "–"
    return f"{mean:.3g}" + (f" ± {std:.2g}" if math.isfinite(std) else "")


def plugin_block(results: Path) -> str:
    """HTML: a subsection with a table per plug-in model, or nothing when the config names none."""
    results = Path(results)
    runs_csv = results / "mixture_runs.csv"  # a version such as "1" must stay text, not become 1.0
    runs = pd.read_csv(runs_csv, dtype={"model_class": str, "model_version": str}) if runs_csv.exists() else None
    plugins, table = plugin_models(runs), read_table(results / "mixture.csv")
    if plugins.empty or table is None:
        return ""
    out = ["<h3 id='plugins'>Plug-in models (mixture.extra_models)</h3>",
           "<p>Models named by import path in the config, trained under every protocol with ALI and GAN run i's "
           "seed, hyperparameters, budget and data, and measured by the same metrics. No published number "
           "exists for them, so there is no verdict. Figure 8 shows each one's best-covering run in a column "
           "after the paper's four.</p>"]
    head = "<tr><th>protocol</th><th>model</th><th>runs (diverged)</th>" + "".join(
        f"<th>{escape(label)}</th>" for label in METRICS.values()) + "</tr>"
    for plugin in plugins.itertuples():
        out.append(f"<p><strong>{escape(plugin.model)}</strong>: <code>{escape(str(plugin.model_class))}</code>, "
                   f"version {escape(str(plugin.model_version))}</p>")
        protocols = table.loc[table["model"] == plugin.model, "protocol"].unique()
        rows = table[table["protocol"].isin(protocols) & table["model"].isin([plugin.model, *BESIDE])]
        body = "".join(
            f"<tr data-model='{escape(r['model'])}'><td>{escape(r['protocol'])}</td><td>{escape(r['model'])}</td>"
            f"<td>{int(r['n_runs'])} ({int(r['n_diverged'])})</td>"
            + "".join(f"<td>{_cell(r[f'{m}_mean'], r[f'{m}_std'])}</td>" for m in METRICS) + "</tr>"
            for _, r in rows.sort_values(["protocol", "model"]).iterrows())
        out.append(f"<table class='plugin' id='plugin-{escape(plugin.model)}'>{head}{body}</table>")
    return "".join(out)
