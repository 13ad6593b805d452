"""Tidy tables: one row per run, then pandas group-bys with the published numbers beside ours."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ali.optim import torch_betas
from ali.report.reference import MIXTURE_REFERENCES, PACGAN_EPOCHS

RUN_METRICS = ("modes", "strict_modes", "hq_pct", "reverse_kl", "recon_sqerr", "recon_same_mode_pct",
               "recon_modes", "qz_gauss_kl", "qz_mmd")


def scale_note(preset: str) -> str:
    if preset == "paper":
        return "paper preset"
    return f"{preset} preset: tiny budgets and data, NOT comparable to the published numbers"


def our_choices(spec: dict) -> str:
    """The choices the paper leaves open that this run depends on, each marked as ours."""
    notes = []
    if spec.get("protocol_kind") == "random" and spec["model"] in ("ali", "gan"):
        notes.append("random lr/beta1/init-std ranges: our choice (see config mixture.protocols)")
    if spec["model"] in ("inverse", "posthoc", "vae"):
        notes.append("baseline optimiser, init and step budget: our choice")
    if spec["model"] in ("inverse", "posthoc"):
        notes.append("source = best-covering GAN by modes, then strict modes, %HQ, reverse KL: our choice")
    if spec["model"] == "vae":
        notes.append(f"VAE Gaussian q(z|x) and Gaussian p(x|z) with std {spec['vae_likelihood_std']}: our choice")
    if spec.get("update") == "alternating":
        notes.append("alternating D/G updates: deviation from the released code's simultaneous updates")
    return "; ".join(notes)


def run_row(run_dir: Path) -> dict:
    """One tidy row: the run's settings, every metric, its status and its provenance."""
    record = json.loads((run_dir / "record.json").read_text())
    metrics_path = run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    spec, prov = record["spec"], record["provenance"]
    adam = spec["adam"]
    b1, b2 = torch_betas(adam["beta1"], adam["beta2"], adam["convention"])
    row = {
        "preset": spec["preset"], "protocol": spec["protocol"], "protocol_kind": spec.get("protocol_kind"),
        "model": spec["model"], "run": spec["run"], "seed": spec["seed"],
        "lr": adam["lr"], "beta1_torch": b1, "beta2_torch": b2, "adam_config_convention": adam["convention"],
        "init_std": spec["init_std"], "update": spec["update"], "batch_size": spec["batch_size"],
        "steps_planned": spec["steps"], "steps_done": record["steps_done"],
        "status": metrics.get("status", record["status"]), "diverged": bool(record["diverged"]),
        "diverged_by_step": record.get("diverged_by_step"),
    }
    for name in RUN_METRICS:
        row[name] = metrics.get(name, np.nan)
    row.update({
        "source_run": record.get("source_run", ""),
        "wall_time_s": record["wall_time_s"], "resumed_from_step": record.get("resumed_from_step"),
        "device": prov["device"], "threads": prov["threads"], "code_version": prov["code_version"],
        **{f"version_{k}": v for k, v in prov["packages"].items()},
        "config_hash": record["config_hash"], "our_choices": our_choices(spec),
        "scale": scale_note(spec["preset"]),
    })
    return row


def runs_frame(run_dirs: list[Path]) -> pd.DataFrame:
    rows = [run_row(Path(d)) for d in run_dirs]
    return pd.DataFrame(rows).sort_values(["protocol", "model", "run"], kind="stable").reset_index(drop=True)


def _stats(values: pd.Series, prefix: str) -> dict:
    v = values.dropna().astype(float)
    n = len(v)
    return {
        f"{prefix}_mean": v.mean() if n else np.nan,
        f"{prefix}_std": v.std(ddof=1) if n > 1 else np.nan,
        f"{prefix}_sem": v.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan,
        f"{prefix}_min": v.min() if n else np.nan,
        f"{prefix}_max": v.max() if n else np.nan,
    }


def mixture_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per protocol x model, with the published numbers in columns named for their source."""
    rows = []
    for (protocol, model), g in runs.groupby(["protocol", "model"], sort=True):
        ok = g[g["status"] == "ok"]
        row = {"preset": g["preset"].iloc[0], "protocol": protocol, "protocol_kind": g["protocol_kind"].iloc[0],
               "model": model, "n_runs": len(g), "n_diverged": int(g["diverged"].sum()),
               "n_evaluated": len(ok)}
        for metric in RUN_METRICS:
            row.update(_stats(ok[metric], metric))
        source, ref = MIXTURE_REFERENCES.get(row["protocol_kind"], ("", {}))
        for key, value in ref.get(model, {}).items():
            row[f"{source}_{key}"] = value
        if source == "pacgan" and model in ref:
            row["pacgan_epochs"] = PACGAN_EPOCHS
        row["std_convention"] = "ours: sample std (ddof=1) and standard error over evaluated runs"
        row["our_choices"] = g["our_choices"].iloc[0]
        row["scale"] = g["scale"].iloc[0]
        row["config_hashes"] = " ".join(g["config_hash"])
        row["code_versions"] = " ".join(sorted(set(g["code_version"])))
        row["wall_time_s_total"] = g["wall_time_s"].sum()
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ Table 1 (SVM)
def svm_trials_frame(paths: list[Path]) -> pd.DataFrame:
    """One row per source x trial: C, error, seed, and the provenance of features and trials."""
    rows = []
    for path in paths:
        r = json.loads(Path(path).read_text())
        meta, s = r["meta"], r["settings"]
        for t in r["trials"]:
            rows.append({
                "preset": s["preset"], "dataset": meta["dataset"], "model": meta["source"],
                "feature_set": meta["feature_set"], "feature_dim": meta["feature_dim"],
                "trial": t["trial"], "draw_seed": t["seed"], "C": t["C"], "error_pct": t["error_pct"],
                "n_labelled": s["n_per_class"] * 10, "solver": s["solver"],
                "source_run": meta["run_dir"], "source_config_hash": meta["run_config_hash"],
                "settings_hash": r["settings_hash"], "code_version": r["provenance"]["code_version"],
                "device": r["provenance"]["device"], "version_torch": r["provenance"]["packages"]["torch"],
                "version_scikit_learn": r["provenance"]["packages"]["scikit-learn"],
                "trials_wall_time_s": r["wall_time_s"], "scale": scale_note(s["preset"]),
            })
    return pd.DataFrame(rows)


def table1_svm_rows(trials: pd.DataFrame) -> pd.DataFrame:
    """L2-SVM rows of Table 1: mean and std (1 sigma, as the paper) of the test error over the trials."""
    from ali.report.reference import PAPER_TABLE1_SVM

    rows = []
    if trials.empty:
        return pd.DataFrame(rows)
    for (dataset, model), g in trials.groupby(["dataset", "model"], sort=False):
        ref = PAPER_TABLE1_SVM.get(model, {}) if dataset == "svhn" else {}
        rows.append({
            "preset": g["preset"].iloc[0], "dataset": dataset, "method": "L2-SVM", "model": model,
            "feature_set": g["feature_set"].iloc[0], "feature_dim": int(g["feature_dim"].iloc[0]),
            "n_labelled": int(g["n_labelled"].iloc[0]), "n_trials": len(g), "C": g["C"].iloc[0],
            "error_pct_mean": g["error_pct"].mean(), "error_pct_std": g["error_pct"].std(ddof=1),
            "error_pct_min": g["error_pct"].min(), "error_pct_max": g["error_pct"].max(),
            "paper_model": ref.get("paper_model", ""), "paper_error_pct": ref.get("paper_error_pct", np.nan),
            "paper_error_std": ref.get("paper_error_std", np.nan), "solver": g["solver"].iloc[0],
            "our_choices": ("feature layers per svm.features; GAN features DCGAN-style (our choice); "
                            "C ties broken towards the smallest C (our choice)"),
            "scale": g["scale"].iloc[0], "settings_hash": g["settings_hash"].iloc[0],
            "code_version": g["code_version"].iloc[0],
        })
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------ K+1 (Table 1 rows, Table 2)
def semisup_runs_frame(run_dirs: list[Path]) -> pd.DataFrame:
    """One row per dataset x model x labels x seed: settings, test error, status, provenance."""
    rows = []
    for d in run_dirs:
        record = json.loads((Path(d) / "record.json").read_text())
        metrics = json.loads((Path(d) / "metrics.json").read_text())
        spec, prov = record["spec"], record["provenance"]
        rows.append({
            "preset": spec["preset"], "dataset": spec["dataset"], "model": spec["model"],
            "n_labels": spec["n_labels"], "seed": spec["seed"], "arch": spec["arch"], "epochs": spec["epochs"],
            "decay_epochs": spec["decay_epochs"], "steps_planned": spec["steps"], "steps_done": record["steps_done"],
            "batch_size": spec["batch_size"], "lr": spec["adam"]["lr"], "beta1": spec["adam"]["beta1"],
            "update": spec["update"], "polyak_rate": spec["polyak_rate"], "status": metrics["status"],
            "diverged": bool(record["diverged"]), "test_error_pct": metrics.get("test_error_pct", np.nan),
            "test_error_last_weights_pct": metrics.get("test_error_last_weights_pct", np.nan),
            "wall_time_s": record["wall_time_s"], "device": prov["device"], "code_version": prov["code_version"],
            **{f"version_{k}": v for k, v in prov["packages"].items()},
            "config_hash": record["config_hash"], "scale": scale_note(spec["preset"]),
            "our_choices": ("K+1 D(x, z) = the dataset's joint D with K outputs; test pairs use the Polyak-"
                            "averaged encoder's mean; number of seeds; pixels in [0, 1]: our choices"),
        })
    return pd.DataFrame(rows).sort_values(["dataset", "model", "n_labels", "seed"]).reset_index(drop=True)


def _error_stats(g: pd.DataFrame) -> dict:
    ok = g.loc[g["status"] == "ok", "test_error_pct"].dropna()
    std = ok.std(ddof=1) if len(ok) > 1 else np.nan
    return {"n_seeds": len(g), "n_diverged": int(g["diverged"].sum()), "error_pct_mean": ok.mean(),
            "error_pct_std": std, "error_pct_3std": 3 * std}


def table2_rows(runs: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Rows ALI and GAN-FM; per number of labels our mean, sigma and 3 sigma beside the paper's."""
    from ali.report.reference import PAPER_TABLE2

    rows = []
    for model, g in runs[runs["dataset"] == dataset].groupby("model", sort=True):
        row = {"preset": g["preset"].iloc[0], "dataset": dataset, "model": model}
        for n, gn in g.groupby("n_labels", sort=True):
            for key, value in _error_stats(gn).items():
                row[f"{key}_{n}"] = value
            paper = PAPER_TABLE2.get(model, {}).get(n) if dataset == "cifar10" else None
            row[f"paper_error_pct_{n}"] = paper[0] if paper else np.nan
            row[f"paper_error_3std_{n}"] = paper[1] if paper else np.nan
        row["std_convention"] = "std over seeds (ddof=1); the paper's Table 2 error bars are 3 sigma"
        row["our_choices"] = g["our_choices"].iloc[0]
        row["scale"] = g["scale"].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def table1_kplus1_rows(runs: pd.DataFrame, dataset: str, n_labels: int) -> pd.DataFrame:
    """The K+1 rows of Table 1 (SVHN, 1,000 labels), in table1.csv's columns."""
    from ali.report.reference import PAPER_TABLE1_KPLUS1

    rows = []
    sel = runs[(runs["dataset"] == dataset) & (runs["n_labels"] == n_labels)]
    for model, g in sel.groupby("model", sort=True):
        ref = PAPER_TABLE1_KPLUS1.get(model, {}) if dataset == "svhn" else {}
        stats = _error_stats(g)
        rows.append({
            "preset": g["preset"].iloc[0], "dataset": dataset, "method": "K+1", "model": model,
            "n_labelled": n_labels, "n_trials": stats["n_seeds"], "n_diverged": stats["n_diverged"],
            "error_pct_mean": stats["error_pct_mean"], "error_pct_std": stats["error_pct_std"],
            "paper_model": ref.get("paper_model", ""), "paper_error_pct": ref.get("paper_error_pct", np.nan),
            "paper_error_std": ref.get("paper_error_std", np.nan), "our_choices": g["our_choices"].iloc[0],
            "scale": g["scale"].iloc[0], "code_version": g["code_version"].iloc[0],
        })
    return pd.DataFrame(rows)
