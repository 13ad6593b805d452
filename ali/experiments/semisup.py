"""K+1 semi-supervised learning (Table 1 K+1 rows on SVHN, Table 2 on CIFAR10).

One run per dataset x model x number of labels x seed, at
``<results>/semisup/<dataset>/<model>/labels<n>/seed<s>/``. The protocol is openai/improved-gan's
(REFERENCE.md, "Table 2"): Adam lr 3e-4, beta1 0.5, batch 100; an epoch is one pass over the
unlabelled training images; the learning rate decays linearly to 0 over the last epochs; the
labelled examples are the first n per class of a seeded permutation; the test error uses the
Polyak-averaged discriminator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ali.config import ConfigError, get
from ali.eval.polyak_bn import polyak_bn_model
from ali.experiments.base import (Experiment, RunContext, RunSpec, arch_from_config, check_names, check_seeds,
                                  register, run_architecture, write_csv)
from ali.data import catalog as image_data
from ali.data.splits import balanced_subset
from ali.models import build_model
from ali.models.base import CAPTURE_MODES, PRECISIONS, UPDATES, Model, StepOptions
from ali.nets import conv
from ali.nets.layers import init_normal_
from ali.nets.architectures import arch_notes
from ali.experiments.rows import runs_frame
from ali.report.tables import table2_rows
from ali.report.reference import GAN_FM_DIFFERENCES, GAN_FM_ROW, KPLUS1_ALI_UPDATE, KPLUS1_POLYAK_BN
from ali.nets.stochastic import GaussianEncoder
from ali.optim import AdamConfig
from ali.data.batches import as_model_input
from ali.train.loop import run_training
from ali.train.record import load_trained, read_record
from ali.train.runtime import resolve_device

MODELS = ("ali_kplus1", "gan_fm")


@dataclass(frozen=True)
class SemisupRun(RunSpec):
    """One K+1 run: dataset, labelled examples, architecture, optimiser and the learning-rate schedule."""

    dataset: str
    arch: str
    arch_options: dict
    n_labels: int
    n_classes: int
    adam: dict  # an AdamConfig as a dict
    batch_size: int
    unlabelled_weight: float
    polyak_rate: float
    update: str
    precision: str  # fp32 | tf32 | bf16: the arithmetic the run trains in (the last two on CUDA only)
    epochs: int
    decay_epochs: int  # the learning rate decays linearly to 0 over these last epochs
    steps_per_epoch: int
    steps: int
    init_std: float
    test_split: str


def plan(cfg: Mapping) -> dict[str, dict]:
    """Every K+1 run: ``{"<dataset>/<model>/labels<n>/seed<s>": spec}``."""
    k = "semisup."
    execution(cfg)  # checked here too (a bad value fails the plan), though it reaches no spec
    models = check_names(cfg, k + "models", MODELS)
    seeds = check_seeds(cfg, k + "seeds")
    common = {
        "experiment": "semisup", "preset": get(cfg, "preset", str),
        "adam": {"lr": get(cfg, k + "lr", float, positive=True), "beta1": get(cfg, k + "beta1", float, low=0, high=0.999),
                 "beta2": get(cfg, k + "beta2", float, low=0, high=0.999999), "convention": "torch"},
        "batch_size": get(cfg, k + "batch_size", int, positive=True),
        "unlabelled_weight": get(cfg, k + "unlabelled_weight", float, low=0.0),
        "polyak_rate": get(cfg, k + "polyak_rate", float, positive=True, high=1.0),
        "update": get(cfg, k + "update", str, choices=UPDATES),
        "precision": get(cfg, k + "precision", str, choices=PRECISIONS, default="fp32"),
    }
    specs = {}
    for dataset in get(cfg, k + "train", list):
        d = f"semisup.datasets.{dataset}"
        if dataset not in get(cfg, k + "datasets", dict) or dataset not in image_data.DATASETS:
            raise ConfigError(f"config key 'semisup.train' names {dataset!r}, which semisup.datasets does not define")
        arch = arch_from_config(cfg, d)
        epochs = get(cfg, d + ".epochs", int, positive=True)
        decay = get(cfg, d + ".decay_epochs", int, low=0, high=epochs)
        n_unl = image_data.split_size(dataset, "train")
        n_classes = image_data.DATASETS[dataset].n_classes
        if n_classes == 0:
            raise ConfigError(f"config key 'semisup.train' names {dataset!r}, which has no class labels: K+1 "
                              f"needs a labelled dataset")
        steps_per_epoch = n_unl // common["batch_size"]
        if steps_per_epoch < 1:
            raise ConfigError(f"config key 'semisup.batch_size' exceeds {dataset}'s {n_unl} training images")
        for n_labels in get(cfg, d + ".labels", list):
            if type(n_labels) is not int or n_labels < n_classes or n_labels % n_classes:
                raise ConfigError(f"config key '{d}.labels' must list multiples of {n_classes}, got {n_labels!r}")
            for model in models:
                for seed in seeds:
                    specs[f"{dataset}/{model}/labels{n_labels}/seed{seed}"] = SemisupRun(
                        **common, dataset=dataset, arch=arch.name, arch_options=dict(arch.options), model=model,
                        n_labels=n_labels, n_classes=n_classes, seed=seed, epochs=epochs, decay_epochs=decay,
                        steps_per_epoch=steps_per_epoch, steps=epochs * steps_per_epoch, init_std=arch.init_std,
                        test_split=get(cfg, d + ".test_split", str)).to_dict()
    return specs


def execution(cfg: Mapping) -> dict:
    """The config's execution choices for K+1 runs (``RunContext`` fields, never spec keys)."""
    return {"capture": get(cfg, "semisup.capture", str, choices=CAPTURE_MODES, default="auto"),
            "channels_last": get(cfg, "semisup.channels_last", bool, default=False)}


def build(spec: Mapping, options: StepOptions | None = None) -> Model:
    """The K+1 model a spec describes, initialised N(0, init_std^2), with its optimisers; ``options`` as
    ``images.build``'s."""
    arch = run_architecture(spec)
    kw = {"update": spec["update"], "n_classes": spec["n_classes"], "batch_size": spec["batch_size"],
          "seed": spec["seed"], "unlabelled_weight": spec["unlabelled_weight"], "polyak_rate": spec["polyak_rate"],
          "schedule": (spec["steps_per_epoch"], spec["epochs"], spec["decay_epochs"]),
          "options": options or StepOptions.from_spec(spec)}
    k = spec["n_classes"]
    if spec["model"] == "gan_fm":
        model = build_model("gan_fm", decoder=conv.ConvDecoder(arch), z_dim=arch.z_dim,
                            discriminator=conv.JointConvDiscriminator(arch, joint=False, n_out=k), **kw)
    else:
        model = build_model("ali_kplus1", encoder=GaussianEncoder(conv.ConvEncoder(arch)), z_dim=arch.z_dim,
                            decoder=conv.ConvDecoder(arch),
                            discriminator=conv.JointConvDiscriminator(arch, joint=True, n_out=k), **kw)
    init_normal_(model, spec["init_std"])
    if model.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.configure_optimizers(AdamConfig(**spec["adam"]))
    return model


def labelled_indices(labels: np.ndarray, spec: Mapping) -> np.ndarray:
    """The first n/K of each class after a permutation seeded by the run's seed: the same for every model."""
    return balanced_subset(labels, spec["n_labels"] // spec["n_classes"], spec["seed"])


def train_run(spec: Mapping, run_dir: Path, *, data_root: Path, options: StepOptions | None = None,
              device: str = "auto", checkpoint_every: int = 2000, log_every: int = 100, progress: bool = True,
              stop_at: int | None = None) -> dict:
    from ali.data import images as image_files  # torchvision loads only when images are read

    x, y = image_files.load(spec["dataset"], "train", data_root)  # unlabelled: all of 'train'
    idx = labelled_indices(y, spec)
    x = torch.from_numpy(np.ascontiguousarray(x))

    def prepare(model) -> None:
        model.set_labelled(x[idx], torch.from_numpy(y[idx]))
        model.decoder.init_output_bias(image_data.to_float(x[:500]))

    return run_training(spec, run_dir, build=lambda s: build(s, options), data=x, device=device, prepare=prepare,
                        desc=f"{spec['dataset']}/{spec['model']}/labels{spec['n_labels']}/seed{spec['seed']}",
                        checkpoint_every=checkpoint_every, log_every=log_every, progress=progress, stop_at=stop_at)


@torch.no_grad()
def test_error(model, images: np.ndarray, labels: np.ndarray, polyak: bool = True, batch: int = 500,
               device: str | torch.device = "cpu") -> float:
    wrong = 0
    for i in range(0, len(images), batch):
        xb = as_model_input(torch.from_numpy(images[i:i + batch]).to(device))
        pred = model.class_logits(xb, polyak=polyak).argmax(1).cpu().numpy()
        wrong += int((pred != labels[i:i + batch]).sum())
    return 100.0 * wrong / len(images)


def evaluate_run(run_dir: Path, data_root: Path, device: str | torch.device = "cpu") -> dict:
    """Test errors of one run.

    The reported ``test_error_pct`` uses the Polyak-averaged weights with their BN statistics
    re-estimated by a pass over the training images (improved-gan's D has no BN, so averaging its
    weights alone was exact there). Beside it: the averaged weights with the BN statistics of the
    last weights (what a naive port reports), and the last weights themselves.
    """
    from ali.data import images as image_files  # torchvision loads only when images are read

    record = read_record(run_dir)
    out = {"run_dir": str(run_dir), "config_hash": record["config_hash"], "status": record["status"]}
    if record["status"] != "ok":
        return out
    model, _ = load_trained(run_dir, build, device)
    spec = record["spec"]
    x_train, _ = image_files.load(spec["dataset"], "train", data_root)
    averaged = polyak_bn_model(model, torch.from_numpy(np.ascontiguousarray(x_train)), spec["batch_size"],
                               seed=spec["seed"])
    x, y = image_files.load(spec["dataset"], spec["test_split"], data_root)
    out["test_error_pct"] = test_error(averaged, x, y, polyak=False, device=device)
    out["test_error_polyak_current_bn_pct"] = test_error(model, x, y, polyak=True, device=device)
    out["test_error_last_weights_pct"] = test_error(model, x, y, polyak=False, device=device)
    out["n_test"] = len(y)
    return out


OUR_CHOICES = ("K+1 D(x, z) = the dataset's joint D with K outputs; test pairs use the Polyak-averaged encoder's "
               "mean; number of seeds; pixels in [0, 1]: our choices", KPLUS1_POLYAK_BN)


@register
class SemiSupervised(Experiment):
    """K+1 semi-supervised ALI and GAN with feature matching (Table 1's K+1 rows, Table 2)."""

    name = "semisup"
    spec_type = SemisupRun
    models = MODELS
    reports = {"semisup-runs": ("report_runs", "semisup_runs.csv: one row per dataset x model x labels x seed"),
               "table2": ("report_table2", "table2.csv from the runs given (one dataset): per label count our "
                                           "mean, sigma and 3 sigma over seeds beside the paper's")}

    def plan(self, cfg):
        return plan(cfg)

    def execution(self, cfg):
        return execution(cfg)

    def train_run(self, spec, run_dir, ctx: RunContext) -> dict:
        return train_run(spec, run_dir, data_root=ctx.data_root, options=ctx.step_options(spec),
                         **ctx.loop_options(self, spec["steps"]))

    def evaluate_run(self, run_dir, settings, ctx):
        return evaluate_run(Path(run_dir), ctx.data_root, resolve_device(ctx.device))

    def our_choices(self, spec):
        model_notes = {"ali_kplus1": (KPLUS1_ALI_UPDATE,), "gan_fm": (GAN_FM_ROW, *GAN_FM_DIFFERENCES)}
        return [*OUR_CHOICES, *model_notes[spec["model"]], *arch_notes(run_architecture(spec))]

    def spec_columns(self, spec):
        return {"dataset": spec["dataset"], "model": spec["model"], "n_labels": spec["n_labels"],
                "seed": spec["seed"], "arch": spec["arch"], "epochs": spec["epochs"],
                "decay_epochs": spec["decay_epochs"], "batch_size": spec["batch_size"], "lr": spec["adam"]["lr"],
                "beta1": spec["adam"]["beta1"], "update": spec["update"], "polyak_rate": spec["polyak_rate"]}

    def report_runs(self, inputs, outputs, settings, ctx):
        write_csv(runs_table(inputs["runs"]), outputs["runs"])

    def report_table2(self, inputs, outputs, settings, ctx):
        write_csv(table2_rows(runs_table(inputs["runs"])), outputs["table"])


def runs_table(run_dirs: list[Path]):
    return runs_frame(run_dirs, sort=["dataset", "model", "n_labels", "seed"])
