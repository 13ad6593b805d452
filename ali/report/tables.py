"""Tables from tidy run rows (``ali.experiments.rows``): pandas group-bys with the published numbers beside ours."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ali.eval.svm import released_std
from ali.report.comparisons import published
from ali.report.reference import (GAN_FM_ROW, MIXTURE_REFERENCES, PACGAN_EPOCHS, PAPER_TABLE1_KPLUS1,
                                  PAPER_TABLE1_SVM, PAPER_TABLE2, PAPER_TABLE2_CONVENTION, SVM_STD_NOTE)
from ali.report.verdicts import TEST_STATEMENT, Ours, verdict

RUN_METRICS = ("modes", "strict_modes", "hq_pct", "reverse_kl", "nonfinite_pct", "recon_sqerr",
               "recon_same_mode_pct", "recon_modes", "qz_gauss_kl", "qz_mmd")  # every mixture run row has these (NaN if not run)
COVERAGE_COUNTS = ("modes", "strict_modes")
EVALUATED = ("ok", "nonfinite_samples")  # runs whose metrics count (non-finite samples land in no mode)
OUR_KPLUS1_ROWS = {"ali_kplus1": "ALI (K+1, no feature matching)", "gan_fm": GAN_FM_ROW}


def _paper_columns(ref: dict) -> dict:
    """A published row's columns: its model, value, error and the error's convention, named as the paper's."""
    return {"paper_model": ref.get("paper_model", ""), "paper_error_pct": ref.get("paper_error_pct", np.nan),
            "paper_error": ref.get("paper_error", np.nan), "paper_error_convention": ref.get("paper_error_convention", ""),
            "paper_source": ref.get("paper_source", "")}


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
        ok = g[g["status"].isin(EVALUATED)]
        row = {"preset": g["preset"].iloc[0], "protocol": protocol, "protocol_kind": g["protocol_kind"].iloc[0],
               "model": model, "n_runs": len(g), "n_diverged": int(g["diverged"].sum()),
               "n_evaluated": len(ok)}
        for metric in RUN_METRICS:
            row.update(_stats(ok[metric], metric))
        for metric in COVERAGE_COUNTS:  # the paper-style figure: a diverged run covers no mode
            counted = g.loc[g["status"].isin([*EVALUATED, "diverged"])]
            as_zero = counted[metric].where(counted["status"] != "diverged", 0.0)
            row.update({f"{k}_diverged_as_0": v for k, v in _stats(as_zero, metric).items()
                        if k.endswith(("_mean", "_std"))})
        source, ref = MIXTURE_REFERENCES.get(row["protocol_kind"], ("", {}))
        for key, value in ref.get(model, {}).items():
            row[f"{source}_{key}"] = value
        for metric in [k[: -len("_mean")] for k in ref.get(model, {}) if k.endswith("_mean")]:
            ours = Ours(row[f"{metric}_mean"], row[f"{metric}_std"], row["n_evaluated"], row["preset"])
            row[f"{source}_{metric}_verdict"] = verdict(ours, published(f"mixture.{source}.{model}.{metric}"))
        if model in ref:
            row["verdict_test"] = TEST_STATEMENT
        if source == "pacgan" and model in ref:
            row["pacgan_epochs"] = PACGAN_EPOCHS
        row["std_convention"] = ("ours: sample std (ddof=1) and standard error over evaluated runs; "
                                 "*_diverged_as_0: over evaluated and diverged runs, a diverged run counting 0")
        row["our_choices"] = g["our_choices"].iloc[0]
        row["scale"] = g["scale"].iloc[0]
        row["config_hashes"] = " ".join(g["config_hash"])
        row["code_versions"] = " ".join(sorted(set(g["code_version"])))
        group_size = g["group_size"] if "group_size" in g else 1
        row["wall_time_s_total"] = (g["wall_time_s"] / group_size).sum()  # a group's time counted once
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ Table 1 (SVM)
def table1_svm_rows(trials: pd.DataFrame) -> pd.DataFrame:
    """L2-SVM rows of Table 1: mean and std (1 sigma, as the paper) of the test error over the trials."""
    rows = []
    if trials.empty:
        return pd.DataFrame(rows)
    for (dataset, model), g in trials.groupby(["dataset", "model"], sort=False):
        ref = PAPER_TABLE1_SVM.get(model, {}) if dataset == "svhn" else {}
        rows.append({
            "preset": g["preset"].iloc[0], "dataset": dataset, "method": "L2-SVM", "model": model,
            "feature_set": g["feature_set"].iloc[0], "feature_dim": int(g["feature_dim"].iloc[0]),
            "n_labelled": int(g["n_labelled"].iloc[0]), "n_trials": len(g), "C": g["C"].iloc[0],
            **_seed_spread(g), "error_pct_std": g["error_pct"].std(ddof=1),
            "error_pct_std_ddof0": released_std(g["error_pct"].to_numpy()),
            "error_pct_min": g["error_pct"].min(), "error_pct_max": g["error_pct"].max(),
            "std_convention": SVM_STD_NOTE, **_paper_columns(ref), "solver": g["solver"].iloc[0],
            "our_choices": g["our_choices"].iloc[0], "scale": g["scale"].iloc[0], "settings_hash": g["settings_hash"].iloc[0],
            "code_version": g["code_version"].iloc[0],
        })
    return pd.DataFrame(rows)


def _seed_spread(g: pd.DataFrame) -> dict:
    """One source's trials over its training seeds (``image_seed``; one seed where the column is absent):
    the mean of the seed means, their std (ddof=1) and the trial variance of a seed's mean, for
    ``verdicts.SeedsTrials``."""
    by_seed = g.groupby("image_seed" if "image_seed" in g else np.zeros(len(g), dtype=int))["error_pct"]
    means = by_seed.mean()
    return {"n_seeds": len(means), "error_pct_mean": means.mean(),
            "error_pct_seed_std": means.std(ddof=1) if len(means) > 1 else np.nan,
            "error_pct_trial_var_of_mean": (by_seed.var(ddof=1) / by_seed.count()).mean()}


# ------------------------------------------------------------------------ K+1 (Table 1 rows, Table 2)
def _error_stats(g: pd.DataFrame) -> dict:
    ok = g.loc[g["status"] == "ok", "test_error_pct"].dropna()
    std = ok.std(ddof=1) if len(ok) > 1 else np.nan
    return {"n_seeds": len(g), "n_diverged": int(g["diverged"].sum()), "error_pct_mean": ok.mean(),
            "error_pct_std": std, "error_pct_3std": 3 * std}


def table2_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """Rows ALI and GAN-FM; per number of labels our mean, sigma and 3 sigma beside the paper's."""
    rows = []
    for (dataset, model), g in runs.groupby(["dataset", "model"], sort=True):
        row = {"preset": g["preset"].iloc[0], "dataset": dataset, "model": model}
        for n, gn in g.groupby("n_labels", sort=True):
            for key, value in _error_stats(gn).items():
                row[f"{key}_{n}"] = value
            paper = PAPER_TABLE2.get(model, {}).get(n) if dataset == "cifar10" else None
            row[f"paper_error_pct_{n}"] = paper[0] if paper else np.nan
            row[f"paper_error_{n}"] = paper[1] if paper else np.nan
        row["our_model"] = OUR_KPLUS1_ROWS.get(model, model)
        row["std_convention"] = "ours: std over seeds (ddof=1), and 3 sigma"
        row["paper_error_convention"] = PAPER_TABLE2_CONVENTION.get(model, "") if dataset == "cifar10" else ""
        row["our_choices"] = g["our_choices"].iloc[0]
        row["scale"] = g["scale"].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def table1_kplus1_rows(runs: pd.DataFrame) -> pd.DataFrame:
    """The K+1 rows of Table 1 (SVHN, 1,000 labels in the paper), in table1.csv's columns."""
    rows = []
    for (dataset, n_labels, model), g in runs.groupby(["dataset", "n_labels", "model"], sort=True):
        ref = PAPER_TABLE1_KPLUS1.get(model, {}) if dataset == "svhn" else {}
        stats = _error_stats(g)
        rows.append({
            "preset": g["preset"].iloc[0], "dataset": dataset, "method": "K+1", "model": model,
            "n_labelled": int(n_labels), "n_trials": stats["n_seeds"], "n_diverged": stats["n_diverged"],
            "our_model": OUR_KPLUS1_ROWS.get(model, model),
            "error_pct_mean": stats["error_pct_mean"], "error_pct_std": stats["error_pct_std"],
            "std_convention": "ours: std over seeds (ddof=1)", **_paper_columns(ref),
            "our_choices": g["our_choices"].iloc[0],
            "scale": g["scale"].iloc[0], "code_version": g["code_version"].iloc[0],
        })
    return pd.DataFrame(rows)
