"""Scoring what others produce (``ali score``): anyone's mixture samples and image features, measured by
the very functions that measure our runs, so a user's numbers can stand beside ours.

- mixture: ``n_samples + n_strict_samples`` generator samples (the two batches our evaluation draws,
  in that order), optionally codes and reconstructions of the held-out set, through
  ``ali.eval.mixture_metrics.mixture_metrics`` (what ``ali evaluate`` calls);
- svm: pool / validation / test features and labels through ``ali.experiments.svm.protocol_trials``.

Files are ``.npy`` (no pickles), ``.pt`` (one tensor, ``torch.load(weights_only=True)``) or ``.csv``
(numbers separated by commas, an optional header line). Input that cannot be scored raises
:class:`ScoreInputError`: one line naming the file and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ali.data.mixture import MixtureData, assign, heldout_set
from ali.data.splits import PROTOCOLS
from ali.eval.mixture_metrics import MIXTURE_METRICS_VERSION, Codes, MixtureOutputs, mixture_metrics
from ali.experiments import mixture as mx
from ali.experiments import svm as svm_exp
from ali.experiments.rows import scale_note
from ali.provenance import code_version
from ali.report.tables import table1_svm_rows

FORMATS = (".npy", ".pt", ".csv")
SVM_CLASSES = 10  # Table 1's protocol: ten digit classes, one-vs-rest


class ScoreInputError(ValueError):
    """A file ``ali score`` cannot measure; the message names the file and what was expected."""


# --------------------------------------------------------------------------------------------- reading
def read_array(path: Path) -> np.ndarray:
    """A numeric array from ``.npy``, ``.pt`` or ``.csv``; nothing is unpickled."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ScoreInputError(f"{path}: expected a {', '.join(FORMATS)} file, got suffix {path.suffix!r}")
    if not path.is_file():
        raise ScoreInputError(f"{path}: no such file")
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif path.suffix == ".pt":
            array = _read_tensor(path)
        else:
            array = _read_csv(path)
    except ScoreInputError:
        raise
    except Exception as err:  # noqa: BLE001  any reader's failure is the file's: say so in one line
        raise ScoreInputError(f"{path}: could not be read as {path.suffix} ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else 'no detail'})") from err
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ScoreInputError(f"{path}: expected real numbers, got dtype {array.dtype}")
    return array


def _read_tensor(path: Path) -> np.ndarray:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(obj, torch.Tensor):
        raise ScoreInputError(f"{path}: expected one tensor (torch.save(tensor, path)), got a {type(obj).__name__}")
    return obj.detach().cpu().numpy()


def _read_csv(path: Path) -> np.ndarray:
    """Rows of numbers; a first line that is not numbers is a header."""
    try:
        return np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError:
        try:
            return np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64, skiprows=1)
        except ValueError as err:
            raise ScoreInputError(f"{path}: expected numbers separated by commas (one header line allowed): "
                                  f"{str(err).splitlines()[0]}") from err


def read_points(path: Path, what: str, rows: int | None, cols: int | None = 2, finite: bool = False) -> torch.Tensor:
    """(rows, cols) float32, as our models' outputs are; NaN/inf rows allowed unless ``finite``."""
    a = read_array(path)
    shape = f"({rows if rows is not None else 'n'}, {cols if cols is not None else 'd'})"
    if a.ndim != 2 or (cols is not None and a.shape[1] != cols) or a.shape[1] == 0 or len(a) == 0:
        raise ScoreInputError(f"{path}: expected {what}, an array of shape {shape}; got shape {a.shape}")
    if rows is not None and len(a) != rows:
        raise ScoreInputError(f"{path}: expected {what}, an array of shape {shape}; got {len(a):,} rows")
    if finite:
        bad = ~np.isfinite(a).all(axis=1)
        if bad.any():
            raise ScoreInputError(f"{path}: expected {what} with finite values, but {int(bad.sum()):,} rows "
                                  f"hold NaN or inf (first: row {int(bad.argmax())})")
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def read_labels(path: Path, rows: int, features: Path) -> torch.Tensor:
    """(rows,) int64 class labels in 0..9, one per row of ``features``."""
    a = read_array(path)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ScoreInputError(f"{path}: expected labels of shape ({rows},), got shape {a.shape}")
    if len(a) != rows:
        raise ScoreInputError(f"{path}: expected {rows:,} labels, one per row of {features}, got {len(a):,}")
    if not np.isfinite(a).all() or (a != np.round(a)).any() or (a < 0).any() or (a >= SVM_CLASSES).any():
        raise ScoreInputError(f"{path}: expected integer class labels 0..{SVM_CLASSES - 1}")
    return torch.from_numpy(a.astype(np.int64))


# --------------------------------------------------------------------------------------------- mixture
def mixture_outputs(data: MixtureData, settings: Mapping, samples: Path, latents: Path | None = None,
                    reconstructions: Path | None = None, inputs: Path | None = None) -> tuple[MixtureOutputs, dict]:
    """The outputs ``mixture_metrics`` measures, read from files and checked; and where the inputs came from."""
    n, m = settings["n_samples"], settings["n_strict_samples"]
    x = read_points(samples, f"samples ({n:,} for the paper's mode count, then {m:,} for the strict metrics; "
                             f"mixture.eval)", rows=n + m)
    x_paper, x_strict = x[:n], x[n:]  # the two independent batches, as evaluate_run draws them
    origin = {"inputs": "", "inputs_are_heldout": None}
    if (latents is None) != (reconstructions is None):
        given = latents or reconstructions
        raise ScoreInputError(f"{given}: inference metrics need both --latents and --reconstructions")
    if latents is None:
        if inputs is not None:
            raise ScoreInputError(f"{inputs}: --inputs needs --latents and --reconstructions (their codes and "
                                  f"reconstructions)")
        return MixtureOutputs(x_paper=x_paper, x_strict=x_strict), origin
    held, held_labels = heldout_set(data)
    if inputs is None:
        x_in, labels = torch.from_numpy(held), held_labels
        origin = {"inputs": f"held-out set (mixture.data, seed {data.seed})", "inputs_are_heldout": True}
    else:
        x_in = read_points(inputs, "inputs x", rows=None, finite=True)
        labels = assign(data, x_in)[0]  # the nearest centre: on our held-out set, each point's own component
        origin = {"inputs": str(inputs), "inputs_are_heldout": bool(x_in.shape == held.shape
                                                                    and np.array_equal(x_in.numpy(), held))}
    k = len(x_in)
    z = read_points(latents, "codes z = encode(x), one per input in order", rows=k, cols=None)
    x_rec = read_points(reconstructions, "reconstructions decode(z), one per input in order", rows=k)
    codes = Codes(inputs=x_in, labels=labels, latents=z, reconstructions=x_rec)
    return MixtureOutputs(x_paper=x_paper, x_strict=x_strict, codes=codes), origin


def score_mixture(cfg: Mapping, samples: Path, latents: Path | None = None, reconstructions: Path | None = None,
                  inputs: Path | None = None) -> dict:
    """One tidy row: the evaluation settings, every run metric (NaN where not measured) and the version."""
    data, settings = mx.data_from_config(cfg), mx.eval_settings(cfg)
    outputs, origin = mixture_outputs(data, settings, samples, latents, reconstructions, inputs)
    metrics = mixture_metrics(data, outputs, settings)
    return {"samples": str(samples), "preset": cfg.get("preset"), "metrics_version": MIXTURE_METRICS_VERSION,
            **{f"eval_{k}": v for k, v in settings.items()}, "data_grid": " ".join(f"{g:g}" for g in data.grid),
            "data_std": data.std, **origin, "status": metrics["status"],
            **{name: metrics.get(name, np.nan) for name in mx.RUN_METRICS}, "code_version": code_version()}


# ------------------------------------------------------------------------------------------------- svm
def svm_parts(s: Mapping, train: tuple[Path, Path], test: tuple[Path, Path],
              val: tuple[Path, Path] | None = None) -> dict[str, torch.Tensor]:
    """pool / valid / test features (float32) and labels, checked. Without ``val`` the train features must
    be the whole 'train' split of ``s["dataset"]``, cut as the released code cuts it."""
    parts = {}
    dim = None
    for name, files in (("train", train), ("valid", val), ("test", test)):
        if files is None:
            continue
        x = read_points(files[0], f"{name} features", rows=None, cols=dim, finite=True)
        dim = x.shape[1]
        parts[name], parts[f"{name}_labels"] = x, read_labels(files[1], len(x), files[0])
    if val is None:
        p = PROTOCOLS[s["dataset"]]
        if len(parts["train"]) != p.n_train:
            raise ScoreInputError(f"{train[0]}: without --val, expected all {p.n_train:,} rows of {s['dataset']} "
                                  f"'train' (the first {p.pool:,} the pool, the last {p.valid:,} validation, as the "
                                  f"released code), got {len(parts['train']):,}; or give --val FEATURES LABELS")
        x, y = parts.pop("train"), parts.pop("train_labels")
        parts.update(valid=x[p.pool:], valid_labels=y[p.pool:])
        parts["train"], parts["train_labels"] = x[:p.pool], y[:p.pool]
    counts = np.bincount(parts["train_labels"].numpy(), minlength=SVM_CLASSES)
    short = {c: int(k) for c, k in enumerate(counts) if k < s["n_per_class"]}
    if short:
        raise ScoreInputError(f"{train[1]}: the protocol draws {s['n_per_class']} examples of each class "
                              f"0..{SVM_CLASSES - 1} from the pool (svm.n_per_class); too few of "
                              f"(class: count) {short}")
    return {"pool": parts["train"], "pool_labels": parts["train_labels"], "valid": parts["valid"],
            "valid_labels": parts["valid_labels"], "test": parts["test"], "test_labels": parts["test_labels"]}


def score_svm(cfg: Mapping, train: tuple[Path, Path], test: tuple[Path, Path], val: tuple[Path, Path] | None = None,
              name: str = "yours", device: torch.device | str = "cpu") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The trials (one row per trial, as svm_trials.csv) and their summary (as table1.csv's L2-SVM rows)."""
    s = svm_exp.settings(cfg)
    parts = svm_parts(s, train, test, val)
    result = svm_exp.protocol_trials(parts, s, device)
    common = {"preset": s["preset"], "dataset": s["dataset"], "model": name, "features": str(train[0]),
              "n_labelled": s["n_per_class"] * SVM_CLASSES, "solver": s["solver"], "feature_set": "user",
              "feature_dim": int(parts["pool"].shape[1]), "settings_hash": result["settings_hash"],
              "protocol_version": result["protocol_version"], "our_choices": "; ".join(svm_exp.OUR_CHOICES[1:]),
              "scale": scale_note(s["preset"]), "code_version": code_version()}
    trials = pd.DataFrame([{**common, "trial": t["trial"], "draw_seed": t["seed"], "C": t["C"],
                            "error_pct": t["error_pct"]} for t in result["trials"]])
    summary = table1_svm_rows(trials).assign(features=common["features"], protocol_version=result["protocol_version"])
    return trials, summary


# ---------------------------------------------------------------------------------------------- output
def describe_mixture(row: Mapping) -> str:
    """The row as aligned lines: the settings it was measured under, then the metrics."""
    keys = ["samples", "preset", "metrics_version", *[k for k in row if k.startswith("eval_")], "inputs", "status",
            *mx.RUN_METRICS]
    return "\n".join(f"{k:<22} {_fmt(row[k])}" for k in keys if k in row and not (k == "inputs" and not row[k]))


def describe_svm(summary: Mapping) -> str:
    """Table 1's numbers: mean test error with both std conventions, over how many trials, at which C."""
    keys = ("model", "features", "dataset", "preset", "protocol_version", "n_labelled", "n_trials", "C",
            "error_pct_mean", "error_pct_std", "error_pct_std_ddof0", "error_pct_min", "error_pct_max")
    lines = [f"{k:<22} {_fmt(summary[k])}" for k in keys if k in summary]
    return "\n".join(lines + ["error_pct_std: sample std (ddof=1); error_pct_std_ddof0: numpy.std, the released "
                              "script's (Table 1's +/-)"])


def _fmt(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
