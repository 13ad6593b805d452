"""The L2-SVM representation benchmark (Table 1, L2-SVM rows), applied to every model alike.

For the configured dataset and each training seed of the source models (``svm.image_seeds``: the
verdict needs the spread between trained encoders, see ``ali.report.verdicts``), each source (ALI
encoder, VAE encoder, GAN discriminator; raw pixels once, they have no training seed) becomes features
of the SVM pool, the validation rows and the test split (one job each);
then one job runs the released protocol on them: C chosen on validation with one class-balanced
labelled draw from exp(linspace(-20, 20, 50)), then ``n_trials`` fresh draws scored on the test set.

Under the experiment contract, a source's "training" is its feature extraction (``features.pt`` and
``record.json`` in ``<results>/svm/<dataset>/<source>/seed<s>/``) and its evaluation is the trials.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ali.config import ConfigError, get
from ali.experiments.base import Experiment, RunContext, RunSpec, check_names, check_seeds, register, write_csv
from ali.data.splits import PROTOCOLS, protocol_split
from ali.eval import svm
from ali.eval.features import ENCODER_SETS, extract
from ali.experiments import images
from ali.experiments.rows import runs_frame
from ali.provenance import config_hash, provenance
from ali.report.tables import table1_kplus1_rows, table1_svm_rows
from ali.train.files import atomic_write, read_tensors, unusable, write_json
from ali.train.record import new_record, read_record, write_record
from ali.train.runtime import resolve_device

SOURCES = ("ali", "vae", "gan", "raw")
SOLVERS = ("exact", "sklearn")


@dataclass(frozen=True)
class SvmRun(RunSpec):
    """One source's features for the L2-SVM (``model`` is the source, ``seed`` its image run's seed);
    ``settings`` is the whole protocol (``settings(cfg)``), shared by every source."""

    dataset: str
    settings: dict


def settings(cfg: Mapping) -> dict:
    """The protocol's settings, checked; one dict shared by every source."""
    k = "svm."
    sources = check_names(cfg, k + "sources", SOURCES)
    dataset = get(cfg, k + "dataset", str, choices=tuple(PROTOCOLS))  # the datasets with an SVM pool/valid split
    if dataset not in get(cfg, "images.train", list) and any(s != "raw" for s in sources):
        raise ConfigError(f"config key 'svm.dataset' is {dataset!r}, which images.train does not train on")
    seeds = check_seeds(cfg, k + "image_seeds")  # the images plan trains these for svm.dataset
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"config key 'svm.image_seeds' lists a seed twice: {seeds}")
    grid = {"log_low": get(cfg, k + "c_grid.log_low", float), "log_high": get(cfg, k + "c_grid.log_high", float),
            "n": get(cfg, k + "c_grid.n", int, positive=True)}
    if not grid["log_low"] < grid["log_high"] and grid["n"] > 1:
        raise ConfigError("config key 'svm.c_grid' must ascend (log_low < log_high): ties go to the smallest C")
    return {"dataset": dataset, "sources": sources, "image_seeds": seeds,
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
    from ali.data import images as image_files  # torchvision loads only when images are read

    x, y = image_files.load(dataset, "train", root)
    rows = protocol_split(dataset, len(x))
    x_test, y_test = image_files.load(dataset, "test", root)
    parts = {"pool": (x[rows["pool"]], y[rows["pool"]]), "valid": (x[rows["valid"]], y[rows["valid"]]),
             "test": (x_test, y_test)}
    return {k: (torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(b)) for k, (a, b) in parts.items()}


def compute_features(source: str, run_dir: Path | None, s: Mapping, data_root: Path, out: Path,
                     device: str = "auto") -> dict:
    """Features of pool / valid / test for one source, saved with their labels and a description."""
    t0 = time.perf_counter()
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
    atomic_write(out, lambda f: torch.save({"features": saved, "meta": meta}, f))
    return {**meta, "wall_time_s": time.perf_counter() - t0}


def protocol_trials(f: Mapping[str, torch.Tensor], s: Mapping, device: torch.device | str = "cpu",
                    progress=None) -> dict:
    """The released protocol on features ``f`` (pool, valid, test and their ``*_labels``) under settings
    ``s``: what ``ali evaluate`` runs on a source's features and ``ali score svm`` on anyone's."""
    result = svm.l2svm_trials(f["pool"], f["pool_labels"], f["valid"], f["valid_labels"], f["test"],
                              f["test_labels"], n_per_class=s["n_per_class"], n_trials=s["n_trials"],
                              Cs=c_grid(s), seed=s["draw_seed"], solver=s["solver"], device=device,
                              progress=progress)
    return {**result, "settings": dict(s), "settings_hash": config_hash(dict(s)),
            "protocol_version": svm.L2SVM_PROTOCOL_VERSION}


def run_trials(features_path: Path, s: Mapping, out: Path | None = None, device: str = "auto",
               progress: bool = True) -> dict:
    """The released protocol on saved features: every trial and the chosen C (written to ``out`` if given)."""
    dev = resolve_device(device)
    blob = read_tensors(features_path, "svm features", "delete it and rerun the job that extracts them")
    if not isinstance(blob, dict) or not {"features", "meta"} <= set(blob):
        raise unusable(features_path, "svm features", "delete it and rerun the job that extracts them",
                       "not a features file of this suite")
    f, meta = blob["features"], blob["meta"]

    def report(done, total):
        if progress and (done == total or done % max(1, total // 10) == 0):
            print(f"[svm {meta['source']}] trial {done}/{total}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    result = protocol_trials(f, s, dev, report)
    result.update({"meta": meta, "wall_time_s": time.perf_counter() - t0, "provenance": provenance(dev)})
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json(out, result)
    return result


FEATURES = "features.pt"
OUR_CHOICES = ("feature layers per svm.features; GAN features DCGAN-style (our choice)",
               "C ties broken towards the smallest C (our choice)")


def plan(cfg: Mapping) -> dict[str, dict]:
    """One feature-extraction run per source and training seed: ``{"svm/<dataset>/<source>/seed<s>": spec}``;
    raw pixels once (the first seed), as they have no training seed."""
    s = settings(cfg)
    return {f"svm/{s['dataset']}/{source}/seed{seed}": SvmRun(experiment="svm", preset=s["preset"], model=source,
                                                              seed=seed, dataset=s["dataset"], settings=s).to_dict()
            for source in s["sources"] for seed in (s["image_seeds"][:1] if source == "raw" else s["image_seeds"])}


@register
class SVM(Experiment):
    """Table 1's L2-SVM rows: the released protocol on every model's features alike."""

    name = "svm"
    spec_type = SvmRun
    models = SOURCES
    reports = {"table1": ("report_table1", "svm_trials.csv (one row per source x trial) and table1.csv: the "
                                           "L2-SVM rows, then the K+1 rows of the semisup runs given")}

    def plan(self, cfg):
        return plan(cfg)

    def settings(self, cfg):
        return settings(cfg)

    def train_run(self, spec, run_dir, ctx: RunContext) -> dict:
        """Features of one source; the image run comes from ``--in run=DIR`` (none for raw pixels)."""
        source_dir = ctx.input("run")
        if spec["model"] != "raw" and source_dir is None:
            raise ConfigError(f"svm source {spec['model']!r} needs its trained image run: pass --in run=DIR")
        meta = compute_features(spec["model"], source_dir, spec["settings"], ctx.data_root,
                                Path(run_dir) / FEATURES, device=ctx.device)
        record = new_record(spec, run_dir, resolve_device(ctx.device), steps_done=None, diverged=False,
                            wall_time_s=meta["wall_time_s"], source_run=meta["run_dir"],
                            source_config_hash=meta["run_config_hash"])
        write_record(run_dir, record)
        return record

    def evaluate_run(self, run_dir, settings, ctx):
        spec = read_record(run_dir)["spec"]
        return run_trials(Path(run_dir) / FEATURES, spec["settings"], device=ctx.device, progress=ctx.progress)

    def our_choices(self, spec):
        return list(OUR_CHOICES)

    def spec_columns(self, spec):
        s = spec["settings"]
        return {"dataset": spec["dataset"], "model": spec["model"], "image_seed": spec["seed"],
                "n_labelled": s["n_per_class"] * 10,
                "solver": s["solver"]}

    def metric_rows(self, metrics):
        meta = metrics["meta"]
        common = {"feature_set": meta["feature_set"], "feature_dim": meta["feature_dim"],
                  "source_config_hash": meta["run_config_hash"], "settings_hash": metrics["settings_hash"],
                  "trials_wall_time_s": metrics["wall_time_s"]}
        return [{**common, "trial": t["trial"], "draw_seed": t["seed"], "C": t["C"], "error_pct": t["error_pct"]}
                for t in metrics["trials"]]

    def report_table1(self, inputs, outputs, settings, ctx):
        trials = runs_frame(inputs.get("svm", []), sort=["dataset", "model", "trial"])
        write_csv(trials, outputs["trials"])
        parts = [table1_svm_rows(trials)]
        if inputs.get("semisup"):
            parts.append(table1_kplus1_rows(runs_frame(inputs["semisup"], sort=["dataset", "model", "n_labels", "seed"])))
        table = pd.concat(parts, ignore_index=True)
        for col in ("feature_dim", "n_labelled", "n_trials", "n_seeds", "n_diverged"):
            if col in table:
                table[col] = table[col].astype("Int64")  # integers stay integers beside the K+1 rows' blanks
        write_csv(table, outputs["table"])
