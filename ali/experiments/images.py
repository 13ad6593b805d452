"""Unsupervised ALI, GAN and VAE on images (paper section 4.1-4.3, appendix Tables 3-6).

One run per dataset x model x seed, at ``<results>/images/<dataset>/<model>/seed<s>/``. The
architecture, optimiser, batch size and epochs come from the dataset's appendix table
(``ali.nets.architectures``); the config may override epochs and batch size (the smoke preset does).
The GAN is the same decoder against D(x) alone; the VAE is the same encoder and decoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ali.config import ConfigError, get
from ali.experiments.base import (Experiment, RunContext, RunSpec, arch_from_config, check_names, check_seeds,
                                  register, run_architecture)
from ali.data import catalog as image_data
from ali.data.splits import PROTOCOLS, unsupervised_rows
from ali.models import build_model
from ali.models.base import CAPTURE_MODES, PRECISIONS, UPDATES, Model, StepOptions
from ali.nets import conv
from ali.nets.layers import init_normal_
from ali.nets.architectures import Architecture, arch_notes
from ali.nets.stochastic import GaussianEncoder
from ali.optim import AdamConfig
from ali.train.loop import run_training
from ali.train.record import load_trained

MODELS = ("ali", "gan", "vae")
VAE_LIKELIHOODS = ("bernoulli",)  # the decoders end in a sigmoid


@dataclass(frozen=True)
class ImagesRun(RunSpec):
    """One unsupervised image run: its dataset rows, appendix architecture, optimiser and budget."""

    omit_if_none = ("vae_likelihood",)

    dataset: str
    arch: str
    arch_options: dict
    train_split: str
    train_rows: list[int] | None  # [start, stop) of the split, or None: all of it
    heldout_split: str
    epochs: int
    batch_size: int
    steps: int
    update: str
    init_std: float
    precision: str  # fp32 | tf32 | bf16: the arithmetic the run trains in (the last two on CUDA only)
    adam: dict  # an AdamConfig as a dict
    vae_likelihood: str | None = None  # the VAE only


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
    spec = arch_from_config(cfg, key)
    split, rows = training_rows(dataset)
    return {
        "arch": spec.name, "arch_options": dict(spec.options), "train_split": split, "train_rows": rows,
        "heldout_split": get(cfg, key + ".heldout_split", str, choices=image_data.DATASETS[dataset].splits),
        "epochs": get(cfg, key + ".epochs", int, positive=True, default=spec.epochs),
        "batch_size": get(cfg, key + ".batch_size", int, positive=True, default=spec.batch_size),
    }


def n_train(dataset: str, split: str, rows: list | None) -> int:
    return image_data.split_size(dataset, split) if rows is None else rows[1] - rows[0]


def svm_source_seeds(cfg: Mapping) -> dict[tuple[str, str], list[int]]:
    """{(dataset, model): seeds} the L2-SVM benchmark needs beyond images.seeds (``svm.image_seeds``)."""
    if "svm" not in cfg:
        return {}
    dataset, seeds = get(cfg, "svm.dataset", str), check_seeds(cfg, "svm.image_seeds")
    return {(dataset, model): seeds for model in get(cfg, "svm.sources", list) if model != "raw"}


def plan(cfg: Mapping) -> dict[str, dict]:
    """Every image training run: ``{"<dataset>/<model>/seed<s>": spec}``."""
    datasets = get(cfg, "images.train", list)
    execution(cfg)  # checked here too (a bad value fails the plan), though it reaches no spec
    models = check_names(cfg, "images.models", MODELS)
    seeds = check_seeds(cfg, "images.seeds")
    svm_seeds = svm_source_seeds(cfg)
    update = get(cfg, "images.update", str, choices=UPDATES)
    likelihood = get(cfg, "images.vae_likelihood", str, choices=VAE_LIKELIHOODS)
    amp = get(cfg, "images.amp", bool, default=False)  # older configs: amp true means bf16
    precision = get(cfg, "images.precision", str, choices=PRECISIONS, default="bf16" if amp else "fp32")
    specs = {}
    for dataset in datasets:
        ds = dataset_settings(cfg, dataset)
        arch = run_architecture(ds)
        n = n_train(dataset, ds["train_split"], ds["train_rows"])
        if ds["batch_size"] > n:
            raise ConfigError(f"config key 'images.datasets.{dataset}.batch_size' exceeds the {n} training images")
        for model in models:
            for seed in sorted(set(seeds) | set(svm_seeds.get((dataset, model), []))):
                specs[f"{dataset}/{model}/seed{seed}"] = ImagesRun(
                    experiment="images", preset=get(cfg, "preset", str), dataset=dataset, model=model, seed=seed,
                    **ds, steps=ds["epochs"] * (n // ds["batch_size"]), update=update, init_std=arch.init_std,
                    precision=precision,
                    adam={"lr": arch.lr, "beta1": arch.beta1, "beta2": arch.beta2, "convention": "torch"},
                    vae_likelihood=likelihood if model == "vae" else None).to_dict()
    return specs


def execution(cfg: Mapping) -> dict:
    """The config's execution choices for image runs (``RunContext`` fields, never spec keys)."""
    return {"capture": get(cfg, "images.capture", str, choices=CAPTURE_MODES, default="auto"),
            "channels_last": get(cfg, "images.channels_last", bool, default=False)}


# ----------------------------------------------------------------------------------------- building
def build(spec: Mapping, options: StepOptions | None = None) -> Model:
    """The model a spec describes, initialised N(0, init_std^2), with its optimisers. ``options``: how
    its step executes (``RunContext.step_options``); by default the spec's precision, eager-or-captured
    as the device decides, in the default layout."""
    arch: Architecture = run_architecture(spec)
    name, options = spec["model"], options or StepOptions.from_spec(spec)
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
    from ali.data import images as image_files  # torchvision loads only when images are read

    images, _ = image_files.load(spec["dataset"], spec["train_split"], root)
    if spec["train_rows"] is not None:
        images = images[spec["train_rows"][0]:spec["train_rows"][1]]
    return torch.from_numpy(np.ascontiguousarray(images))


def train_run(spec: Mapping, run_dir: Path, *, data_root: Path, options: StepOptions | None = None,
              device: str = "auto", checkpoint_every: int = 2000, log_every: int = 100, progress: bool = True,
              stop_at: int | None = None) -> dict:
    data = training_images(spec, data_root)

    def prepare(model: Model) -> None:
        # The released code starts the decoder's output bias at the log-odds of the mean pixel.
        model.decoder.init_output_bias(image_data.to_float(data[:500]))

    return run_training(spec, run_dir, build=lambda s: build(s, options), data=data, device=device, prepare=prepare,
                        desc=f"{spec['dataset']}/{spec['model']}/seed{spec['seed']}",
                        checkpoint_every=checkpoint_every, log_every=log_every, progress=progress,
                        stop_at=stop_at)


def load(run_dir: Path, device: str | torch.device = "cpu") -> tuple[Model, dict]:
    return load_trained(run_dir, build, device)


def figure_settings(cfg: Mapping) -> dict:
    k = "images.figures."
    counts = {n: get(cfg, k + n, int, positive=True) for n in ("n_samples", "n_reconstructions", "n_interpolations")}
    return {**counts, "interpolation_steps": get(cfg, k + "interpolation_steps", int, low=2),
            "seed": get(cfg, k + "seed", int, low=0)}


def draw_figures(run_dir: Path, settings: Mapping, outputs: Mapping[str, Path], data_root: Path) -> None:
    """Samples (Figures 2-5, left) and, for models with an encoder, held-out reconstructions
    (Figures 2-5, right) and interpolations (Figure 6): whichever of the three ``outputs`` names."""
    from ali.data import images as image_files  # torchvision loads only when images are read
    from ali.report import image_figures as figs  # matplotlib loads only when a figure is drawn

    model, record = load(Path(run_dir))
    spec = record["spec"]
    torch.manual_seed(settings["seed"])
    if "samples" in outputs:
        figs.samples_grid(model, settings["n_samples"], outputs["samples"])
    if not {"reconstructions", "interpolations"} & set(outputs):
        return
    if not model.has_encoder:
        raise ConfigError(f"{spec['model']} has no encoder: no reconstructions or interpolations")
    x, _ = image_files.load(spec["dataset"], spec["heldout_split"], data_root)
    x = torch.from_numpy(image_data.to_float(x))
    n, k = settings["n_reconstructions"], settings["n_interpolations"]
    figs.reconstructions_grid(model, x[:n], outputs["reconstructions"])
    figs.interpolation_grid(model, x[n:n + k], x[n + k:n + 2 * k], settings["interpolation_steps"],
                            outputs["interpolations"])


@register
class Images(Experiment):
    """Unsupervised ALI, GAN and VAE on images (appendix Tables 3-6) and their figures."""

    name = "images"
    spec_type = ImagesRun
    models = MODELS
    reports = {"image-figures": ("report_figures", "samples, reconstructions and interpolations of one image "
                                                   "run (Figures 2-6; reconstructions: odd columns data, even "
                                                   "columns reconstructions)")}

    def plan(self, cfg):
        return plan(cfg)

    def settings(self, cfg):
        return figure_settings(cfg)

    def execution(self, cfg):
        return execution(cfg)

    def train_run(self, spec, run_dir, ctx: RunContext) -> dict:
        return train_run(spec, run_dir, data_root=ctx.data_root, options=ctx.step_options(spec),
                         **ctx.loop_options(self, spec["steps"]))

    def evaluate_run(self, run_dir, settings, ctx):
        raise ConfigError("image runs are evaluated by the svm experiment (features) and their figures: "
                          "`ali report image-figures`")

    def our_choices(self, spec):
        notes = ["seeds: images.seeds per dataset x model (one: our choice), and svm.image_seeds for the SVM's "
                 "dataset (three: our choice)", *arch_notes(run_architecture(spec))]
        if spec["model"] == "vae":
            notes.append(f"VAE {spec['vae_likelihood']} likelihood: our choice")
        if spec["dataset"] == "tiny_imagenet":
            notes.append("Tiny ImageNet 200 as the stand-in for the paper's 64x64 ImageNet: our choice")
        return notes

    def spec_columns(self, spec):
        return {"dataset": spec["dataset"], "model": spec["model"], "seed": spec["seed"], "arch": spec["arch"],
                "epochs": spec["epochs"], "batch_size": spec["batch_size"], "update": spec["update"]}

    def report_figures(self, inputs, outputs, settings, ctx):
        draw_figures(inputs["run"][0], settings, outputs, ctx.data_root)
