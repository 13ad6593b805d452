"""Unsupervised ALI, GAN and VAE on images (paper section 4.1-4.3, appendix Tables 3-6).

One run per dataset x model x seed, at ``<results>/images/<dataset>/<model>/seed<s>/``. The
architecture, optimiser, batch size and epochs come from the dataset's appendix table
(``ali.nets.specs``); the config may override epochs and batch size (the smoke preset does).
The GAN is the same decoder against D(x) alone; the VAE is the same encoder and decoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ali.config import ConfigError, get
from ali.data import images as image_data
from ali.data.splits import PROTOCOLS, unsupervised_rows
from ali.experiments.runs import load_trained, run_training
from ali.models import build_model
from ali.models.base import CAPTURE_MODES, PRECISIONS, UPDATES, Model, StepOptions
from ali.nets import conv
from ali.nets.layers import init_normal_
from ali.nets.specs import SPECS, ArchSpec
from ali.nets.stochastic import GaussianEncoder
from ali.optim import AdamConfig

MODELS = ("ali", "gan", "vae")
VAE_LIKELIHOODS = ("bernoulli",)  # the decoders end in a sigmoid


# ----------------------------------------------------------------------------------------- planning
def training_rows(dataset: str) -> tuple[str, list[int] | None]:
    """The split and rows the unsupervised model trains on (released code: SVHN 'extra', CIFAR10 train[:45000])."""
    if dataset in PROTOCOLS:
        split, rows = unsupervised_rows(dataset)
        stop = image_data.split_size(dataset, split) if rows.stop is None else rows.stop
        return split, [rows.start or 0, stop]
    return "train", None


def dataset_settings(cfg: Mapping, dataset: str) -> dict:
    key = f"images.datasets.{dataset}"
    if dataset not in get(cfg, "images.datasets", dict):
        raise ConfigError(f"config key 'images.train' names {dataset!r}, which images.datasets does not define")
    if dataset not in image_data.DATASETS:
        raise ConfigError(f"config key {key!r}: unknown dataset; known: {sorted(image_data.DATASETS)}")
    arch = get(cfg, key + ".arch", str, choices=tuple(SPECS))
    spec = SPECS[arch]
    split, rows = training_rows(dataset)
    return {
        "arch": arch, "train_split": split, "train_rows": rows,
        "heldout_split": get(cfg, key + ".heldout_split", str, choices=image_data.DATASETS[dataset].splits),
        "epochs": get(cfg, key + ".epochs", int, positive=True, default=spec.epochs),
        "batch_size": get(cfg, key + ".batch_size", int, positive=True, default=spec.batch_size),
    }


def n_train(dataset: str, split: str, rows: list | None) -> int:
    return image_data.split_size(dataset, split) if rows is None else rows[1] - rows[0]


def plan(cfg: Mapping) -> dict[str, dict]:
    """Every image training run: ``{"<dataset>/<model>/seed<s>": spec}``."""
    datasets = get(cfg, "images.train", list)
    models = get(cfg, "images.models", list)
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        raise ConfigError(f"config key 'images.models' has unknown models {unknown}; known: {list(MODELS)}")
    seeds = get(cfg, "images.seeds", list)
    if not seeds or not all(type(s) is int and s >= 0 for s in seeds):  # bool is an int subclass
        raise ConfigError(f"config key 'images.seeds' must list non-negative integers, got {seeds!r}")
    update = get(cfg, "images.update", str, choices=UPDATES)
    likelihood = get(cfg, "images.vae_likelihood", str, choices=VAE_LIKELIHOODS)
    amp = get(cfg, "images.amp", bool, default=False)  # older configs: amp true means bf16
    step_options = {"precision": get(cfg, "images.precision", str, choices=PRECISIONS,
                                     default="bf16" if amp else "fp32"),
                    "channels_last": get(cfg, "images.channels_last", bool, default=False),
                    "capture": get(cfg, "images.capture", str, choices=CAPTURE_MODES, default="auto")}
    specs = {}
    for dataset in datasets:
        ds = dataset_settings(cfg, dataset)
        arch = SPECS[ds["arch"]]
        n = n_train(dataset, ds["train_split"], ds["train_rows"])
        if ds["batch_size"] > n:
            raise ConfigError(f"config key 'images.datasets.{dataset}.batch_size' exceeds the {n} training images")
        for model in models:
            for seed in seeds:
                spec = {"experiment": "images", "preset": get(cfg, "preset", str), "dataset": dataset,
                        "model": model, "seed": seed, **ds, "steps": ds["epochs"] * (n // ds["batch_size"]),
                        "update": update, "init_std": arch.init_std, **step_options,
                        "adam": {"lr": arch.lr, "beta1": arch.beta1, "beta2": arch.beta2, "convention": "torch"}}
                if model == "vae":
                    spec["vae_likelihood"] = likelihood
                specs[f"{dataset}/{model}/seed{seed}"] = spec
    return specs


# ----------------------------------------------------------------------------------------- building
def build(spec: Mapping) -> Model:
    """The model a spec describes, initialised N(0, init_std^2), with its optimisers."""
    arch: ArchSpec = SPECS[spec["arch"]]
    name, options = spec["model"], StepOptions.from_spec(spec)
    if name == "ali":
        model = build_model("ali", encoder=GaussianEncoder(conv.ConvEncoder(arch)), decoder=conv.ConvDecoder(arch),
                            discriminator=conv.JointConvDiscriminator(arch, joint=True), z_dim=arch.z_dim,
                            update=spec["update"], options=options)
    elif name == "gan":
        model = build_model("gan", decoder=conv.ConvDecoder(arch), z_dim=arch.z_dim, update=spec["update"],
                            discriminator=conv.JointConvDiscriminator(arch, joint=False), options=options)
    elif name == "vae":
        model = build_model("vae", encoder=GaussianEncoder(conv.ConvEncoder(arch)), decoder=conv.ConvDecoder(arch),
                            z_dim=arch.z_dim, likelihood=spec["vae_likelihood"], options=options)
    else:
        raise ValueError(f"unknown image model {name!r}")
    init_normal_(model, spec["init_std"])
    if options.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.configure_optimizers(AdamConfig(**spec["adam"]))
    return model


def training_images(spec: Mapping, root: Path) -> torch.Tensor:
    """The run's training images as uint8 (N, C, H, W); the loop scales each batch to [0, 1]."""
    images, _ = image_data.load(spec["dataset"], spec["train_split"], root)
    if spec["train_rows"] is not None:
        images = images[spec["train_rows"][0]:spec["train_rows"][1]]
    return torch.from_numpy(np.ascontiguousarray(images))


def train_run(spec: Mapping, run_dir: Path, *, data_root: Path, device: str = "auto",
              checkpoint_every: int = 2000, log_every: int = 100, progress: bool = True,
              stop_at: int | None = None) -> dict:
    data = training_images(spec, data_root)

    def prepare(model: Model) -> None:
        # The released code starts the decoder's output bias at the log-odds of the mean pixel.
        model.decoder.init_output_bias(data[:500].float() / 255.0)

    return run_training(spec, run_dir, build=build, data=data, device=device, prepare=prepare,
                        desc=f"{spec['dataset']}/{spec['model']}/seed{spec['seed']}",
                        checkpoint_every=checkpoint_every, log_every=log_every, progress=progress,
                        stop_at=stop_at)


def load(run_dir: Path, device: str | torch.device = "cpu") -> tuple[Model, dict]:
    return load_trained(run_dir, build, device)
