"""The L2-SVM representation benchmark (Table 1, L2-SVM rows), applied to every model alike.

For the configured dataset and seed, each source (ALI encoder, VAE encoder, GAN discriminator, raw
pixels) becomes features of the SVM pool, the validation rows and the test split (one job each);
then one job runs the released protocol on them: C chosen on validation with one class-balanced
labelled draw from exp(linspace(-20, 20, 50)), then ``n_trials`` fresh draws scored on the test set.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ali.config import ConfigError, get
from ali.data import images as image_data
from ali.data.splits import protocol_split
from ali.eval import svm
from ali.eval.features import ENCODER_SETS, extract
from ali.experiments import images
from ali.provenance import config_hash, provenance
from ali.train import resolve_device

SOURCES = ("ali", "vae", "gan", "raw")
SOLVERS = ("exact", "sklearn")


def settings(cfg: Mapping) -> dict:
    """The protocol's settings, checked; one dict shared by every source."""
    k = "svm."
    sources = get(cfg, k + "sources", list)
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise ConfigError(f"config key 'svm.sources' has unknown sources {unknown}; known: {list(SOURCES)}")
    dataset = get(cfg, k + "dataset", str, choices=tuple(image_data.DATASETS))
    if dataset not in get(cfg, "images.train", list) and any(s != "raw" for s in sources):
        raise ConfigError(f"config key 'svm.dataset' is {dataset!r}, which images.train does not train on")
    seed = get(cfg, k + "image_seed", int, low=0)
    if seed not in get(cfg, "images.seeds", list):
        raise ConfigError(f"config key 'svm.image_seed' ({seed}) is not one of images.seeds")
    grid = {"log_low": get(cfg, k + "c_grid.log_low", float), "log_high": get(cfg, k + "c_grid.log_high", float),
            "n": get(cfg, k + "c_grid.n", int, positive=True)}
    if not grid["log_low"] < grid["log_high"] and grid["n"] > 1:
        raise ConfigError("config key 'svm.c_grid' must ascend (log_low < log_high): ties go to the smallest C")
    return {"dataset": dataset, "sources": sources, "image_seed": seed,
            "features": get(cfg, k + "features", str, choices=ENCODER_SETS),
            "n_per_class": get(cfg, k + "n_per_class", int, positive=True),
            "n_trials": get(cfg, k + "n_trials", int, positive=True),
            "draw_seed": get(cfg, k + "draw_seed", int, low=0), "c_grid": grid,
            "solver": get(cfg, k + "solver", str, choices=SOLVERS), "preset": get(cfg, "preset", str)}


def c_grid(s: Mapping) -> np.ndarray:
    g = s["c_grid"]
    return np.exp(np.linspace(g["log_low"], g["log_high"], g["n"]))


def protocol_data(dataset: str, root: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """uint8 images and labels of the SVM pool, the validation rows and the test split."""
    x, y = image_data.load(dataset, "train", root)
    rows = protocol_split(dataset, len(x))
    x_test, y_test = image_data.load(dataset, "test", root)
    parts = {"pool": (x[rows["pool"]], y[rows["pool"]]), "valid": (x[rows["valid"]], y[rows["valid"]]),
             "test": (x_test, y_test)}
    return {k: (torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(b)) for k, (a, b) in parts.items()}


def compute_features(source: str, run_dir: Path | None, s: Mapping, data_root: Path, out: Path,
                     device: str = "auto") -> dict:
    """Features of pool / valid / test for one source, saved with their labels and a description."""
    dev = resolve_device(device)
    model, record = (None, None) if source == "raw" else images.load(run_dir, dev)
    feature_set = s["features"] if source in ("ali", "vae") else ("dcgan" if source == "gan" else "pixels")
    saved, meta = {}, {}
    for part, (x, y) in protocol_data(s["dataset"], data_root).items():
        saved[part] = extract(source, model, x, s["features"], device=dev)
        saved[f"{part}_labels"] = y
    meta = {"source": source, "dataset": s["dataset"], "feature_set": feature_set,
            "feature_dim": int(saved["pool"].shape[1]), "run_dir": str(run_dir or ""),
            "run_config_hash": record["config_hash"] if record else "", "provenance": provenance(dev)}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"features": saved, "meta": meta}, out)
    return meta


def run_trials(features_path: Path, s: Mapping, out: Path, device: str = "auto", progress: bool = True) -> dict:
    """The released protocol on saved features; writes every trial and the chosen C."""
    import sys
    import time

    dev = resolve_device(device)
    blob = torch.load(features_path, map_location="cpu", weights_only=True)
    f, meta = blob["features"], blob["meta"]

    def report(done, total):
        if progress and (done == total or done % max(1, total // 10) == 0):
            print(f"[svm {meta['source']}] trial {done}/{total}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    result = svm.l2svm_trials(f["pool"], f["pool_labels"], f["valid"], f["valid_labels"], f["test"],
                              f["test_labels"], n_per_class=s["n_per_class"], n_trials=s["n_trials"],
                              Cs=c_grid(s), seed=s["draw_seed"], solver=s["solver"], device=dev,
                              progress=report)
    result.update({"meta": meta, "settings": dict(s), "settings_hash": config_hash(dict(s)),
                   "wall_time_s": time.perf_counter() - t0, "provenance": provenance(dev)})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True))
    return result
