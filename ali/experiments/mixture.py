"""The 25-mode mixture experiment (paper section 4.5): plan, train, evaluate, select.

A *plan* turns the config into one :class:`MixtureRun` per training job, stored as JSON and hashed
for provenance. Runs live at ``<results>/mixture/<protocol>/<model>/run<i>/``. The experiment
contract (:class:`Mixture`) adds evaluation, the choice of the best run, the tables and Figure 8.

Protocols (``kind``):
- ``random``: the paper's. n runs per model with learning rate, beta1 and init std drawn at random;
  the ranges are OUR CHOICE (the paper publishes none). ALI run i and GAN run i share the draw and the
  seed, so the comparison is paired.
- ``fixed``: the released code's hyperparameters, n seeds, the paper's budget, one training set.
- ``pacgan``: PacGAN's exact re-run (fjxmlzn/PacGAN, 2DGrid_ALI): the released hyperparameters for
  400 epochs, each run on its own freshly drawn training set (``data_seed + i``); PacGAN's numbers
  stand beside these rows only.
Any protocol may set ``epochs`` (else ``mixture.train.epochs``), ``data_seed`` (a fresh training set
per run) and ``baselines: false`` (no inference baselines for it).
Baselines (inverse mapping, post-hoc inference, VAE) train once per protocol: the first two on the
best-covering GAN run's frozen decoder.
Plug-in models (``mixture.extra_models``, named by import path; the contract is ``ali.models.plugin``)
train like ALI and GAN run i, with its seed, hyperparameter draw, budget and data, in the solo loop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ali.config import ConfigError, get
from ali.experiments.base import (Experiment, RunContext, RunSpec, check_names, read_json, register, write_csv,
                                  write_json)
from ali.experiments.published import publish_protocol
from ali.experiments.rows import runs_frame
from ali.data.mixture import MixtureData, heldout_set, train_set
from ali.eval.coverage import paper_modes, strict_metrics
from ali.eval.mixture_metrics import MIXTURE_METRICS_VERSION, Codes, MixtureOutputs, mixture_metrics
from ali.models import build_model
from ali.models.base import CAPTURE_MODES, PRECISIONS, UPDATES, Model, StepOptions
from ali.models.plugin import Plugin, build_plugin, resolve
from ali.nets import mlp
from ali.nets.layers import init_normal_
from ali.nets.stochastic import ConcatDiscriminator, GaussianEncoder, ImplicitEncoder
from ali.optim import CONVENTIONS, AdamConfig
from ali.report.tables import RUN_METRICS, mixture_summary
from ali.train import group as lifecycle_group
from ali.train.loop import run_training
from ali.train.record import METRICS, MODEL_FILE, RECORD, SPEC, load_trained as load_run, read_record, skip_run  # noqa: F401

BASE_MODELS = ("ali", "gan")
BASELINES = ("inverse", "posthoc", "vae")
NEEDS_SOURCE = ("inverse", "posthoc")
PROTOCOL_KINDS = ("random", "fixed", "pacgan")
MODEL_NAME = re.compile(r"[a-z][a-z0-9_]*")  # a plug-in's name: a path part and a Snakemake wildcard value
CURVE_EVERY = 10  # history.csv: the mode count and %HQ every 10 log intervals (10,000 steps in the paper preset)
# The training curve's coverage: OUR CHOICE of a cheap probe, the strict metric's sample size and HQ radius.
EVAL_SAMPLES, EVAL_SEED, HQ_STDS = 2500, 0, 3.0
CURVE_COLUMNS = ("modes", "hq_pct")


@dataclass(frozen=True)
class MixtureRun(RunSpec):
    """One mixture training run. ``adam`` is an :class:`AdamConfig` as a dict (its own convention)."""

    protocol: str
    protocol_kind: str
    run: int
    data: dict
    nets: dict
    batch_size: int
    update: str
    steps: int
    adam: dict
    init_std: float
    precision: str = "fp32"  # fp32 | tf32 | bf16: the arithmetic the run trains in (the last two on CUDA only)
    vae_likelihood_std: float | None = None  # the VAE baseline only
    source: str | None = None  # inverse mapping and post-hoc: where their frozen decoder comes from
    model_class: str | None = None  # a plug-in model: its import path (mixture.extra_models)
    model_version: str | None = None  # and its version (module __version__, else its source's hash)

    omit_if_none = ("vae_likelihood_std", "source", "model_class", "model_version")


# ----------------------------------------------------------------------------------------- planning
def data_from_config(cfg: Mapping) -> MixtureData:
    grid = get(cfg, "mixture.data.grid", list)
    if len(grid) < 2 or not all(isinstance(g, (int, float)) and not isinstance(g, bool) for g in grid):
        raise ConfigError(f"config key 'mixture.data.grid' must list at least two numbers, got {grid!r}")
    return MixtureData(
        grid=tuple(float(g) for g in grid),
        std=get(cfg, "mixture.data.std", float, positive=True),
        n_train=get(cfg, "mixture.data.n_train", int, positive=True),
        n_heldout=get(cfg, "mixture.data.n_heldout", int, low=2),
        seed=get(cfg, "mixture.data.seed", int, low=0),
    )


def nets_from_config(cfg: Mapping) -> mlp.MixtureNets:
    k = "mixture.nets."
    return mlp.MixtureNets(
        gen_hidden=get(cfg, k + "gen_hidden", int, positive=True),
        encoder_layers=get(cfg, k + "encoder_layers", int, positive=True),
        decoder_layers=get(cfg, k + "decoder_layers", int, positive=True),
        disc_hidden=get(cfg, k + "disc_hidden", int, positive=True),
        disc_layers=get(cfg, k + "disc_layers", int, positive=True),
        maxout_pieces=get(cfg, k + "maxout_pieces", int, positive=True),
    )


def adam_from_config(cfg: Mapping, key: str) -> AdamConfig:
    adam = AdamConfig(
        lr=get(cfg, key + ".lr", float, positive=True),
        beta1=get(cfg, key + ".beta1", float, low=0.0, high=1.0),
        beta2=get(cfg, key + ".beta2", float, low=0.0, high=1.0),
        convention=get(cfg, key + ".convention", str, choices=CONVENTIONS),
    )
    try:
        adam.torch_betas()
    except ValueError as err:
        raise ConfigError(f"config key {key!r}: {err}") from err
    return adam


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _range(cfg: Mapping, key: str, low_bound: float, high_bound: float | None = None) -> tuple[float, float]:
    low = get(cfg, key + ".low", float, low=low_bound, high=high_bound)
    high = get(cfg, key + ".high", float, low=low_bound, high=high_bound)
    if not low <= high:
        raise ConfigError(f"config key {key!r} must have low <= high, got [{low}, {high}]")
    return low, high


def protocol_settings(cfg: Mapping, protocol: str) -> list[dict]:
    """One dict per run: seed, Adam config (PyTorch convention recorded too) and init std."""
    key = f"mixture.protocols.{protocol}"
    kind = get(cfg, key + ".kind", str, choices=PROTOCOL_KINDS)
    n_runs = get(cfg, key + ".n_runs", int, positive=True)
    seed = get(cfg, key + ".seed", int, low=0)
    runs = []
    if kind in ("fixed", "pacgan"):
        adam = adam_from_config(cfg, key + ".adam")
        init_std = get(cfg, key + ".init_std", float, positive=True)
        for i in range(n_runs):
            runs.append({"seed": seed + i, "adam": asdict(adam), "init_std": init_std})
        return runs
    lr_range = _range(cfg, key + ".lr", 1e-12)
    beta1_range = _range(cfg, key + ".beta1", 0.0, 0.999999)
    std_range = _range(cfg, key + ".init_std", 1e-12)
    beta2 = get(cfg, key + ".beta2", float, low=0.0, high=0.999999)
    rng = np.random.default_rng(seed)  # one stream for the protocol: every model sees the same draws
    for i in range(n_runs):
        lr = _log_uniform(rng, *lr_range)
        beta1 = float(rng.uniform(*beta1_range))
        init_std = _log_uniform(rng, *std_range)
        adam = AdamConfig(lr=lr, beta1=beta1, beta2=beta2, convention="torch")
        runs.append({"seed": seed + i, "adam": asdict(adam), "init_std": init_std})
    return runs


def extra_models(cfg: Mapping) -> dict[str, Plugin]:
    """``mixture.extra_models``: plug-in models by name, each imported and checked against the contract."""
    key = "mixture.extra_models"
    entries = get(cfg, key, dict, default={}) or {}
    plugins = {}
    for name, import_path in entries.items():
        if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
            raise ConfigError(f"config key {key!r}: model name {name!r} must be lower case letters, digits and "
                              f"underscores, starting with a letter")
        if name in BASE_MODELS + BASELINES:
            raise ConfigError(f"config key '{key}.{name}': {name!r} is a built-in mixture model; give the plug-in "
                              f"another name (built-in: {list(BASE_MODELS + BASELINES)})")
        plugins[name] = resolve(import_path, f"{key}.{name}")
    return plugins


def plan(cfg: Mapping) -> dict[str, dict]:
    """Every training run of the experiment: ``{"<protocol>/<model>/run<i>": spec}``."""
    data, nets = data_from_config(cfg), nets_from_config(cfg)
    plugins = extra_models(cfg)
    execution(cfg)  # checked here too (a bad value fails the plan), though it reaches no spec
    epochs = get(cfg, "mixture.train.epochs", int, positive=True)
    batch = get(cfg, "mixture.train.batch_size", int, positive=True)
    if batch > data.n_train:
        raise ConfigError(f"config key 'mixture.train.batch_size' ({batch}) exceeds mixture.data.n_train")
    update = get(cfg, "mixture.train.update", str, choices=UPDATES)
    steps_per_epoch = data.n_train // batch
    common = {"experiment": "mixture", "preset": get(cfg, "preset", str), "nets": asdict(nets), "batch_size": batch,
              "update": update, "precision": get(cfg, "mixture.precision", str, choices=PRECISIONS, default="fp32")}
    protocols = get(cfg, "mixture.protocols", dict)
    if not protocols:
        raise ConfigError("config key 'mixture.protocols' must define at least one protocol")
    specs: dict[str, dict] = {}
    for protocol in protocols:
        key = f"mixture.protocols.{protocol}"
        kind = get(cfg, key + ".kind", str, choices=PROTOCOL_KINDS)
        steps = get(cfg, key + ".epochs", int, positive=True, default=epochs) * steps_per_epoch
        data_seed = get(cfg, key + ".data_seed", int, low=0, default=None)
        for i, setting in enumerate(protocol_settings(cfg, protocol)):
            run_data = data if data_seed is None else replace(data, seed=data_seed + i)  # PacGAN: fresh per run
            for model in BASE_MODELS + tuple(plugins):  # a plug-in shares run i's seed and draw with ALI and GAN
                plugin = plugins.get(model)
                specs[f"{protocol}/{model}/run{i}"] = MixtureRun(
                    **common, data=asdict(run_data), protocol=protocol, protocol_kind=kind, model=model, run=i,
                    steps=steps, model_class=plugin and plugin.import_path, model_version=plugin and plugin.version,
                    **setting).to_dict()
        if not get(cfg, key + ".baselines", bool, default=True):
            continue
        b = "mixture.baselines"
        models = check_names(cfg, b + ".models", BASELINES)
        b_steps = get(cfg, b + ".epochs", int, positive=True) * steps_per_epoch
        b_adam = asdict(adam_from_config(cfg, b + ".adam"))
        b_std = get(cfg, b + ".init_std", float, positive=True)
        b_seed = get(cfg, b + ".seed", int, low=0)
        lik_std = get(cfg, b + ".vae_likelihood_std", float, positive=True)
        for model in models:
            specs[f"{protocol}/{model}/run0"] = MixtureRun(
                **common, data=asdict(data), protocol=protocol, protocol_kind=kind, model=model, run=0, steps=b_steps, seed=b_seed,
                adam=b_adam, init_std=b_std, vae_likelihood_std=lik_std if model == "vae" else None,
                source="best-covering gan run of this protocol" if model in NEEDS_SOURCE else None).to_dict()
    return specs


def group_size(cfg: Mapping) -> int:
    """How many ALI (or GAN) runs of a protocol one training job trains as one batched model.

    ``auto``: one per job on CPU (many jobs in parallel, one core each); on a GPU every run of a
    protocol's model in one job. 0 means "the whole protocol".
    """
    size = get(cfg, "mixture.group_size", (int, str), default="auto")
    if size == "auto":
        return 1 if get(cfg, "mixture.device", str) == "cpu" else 0
    if isinstance(size, str) or size < 0:
        raise ConfigError(f"config key 'mixture.group_size' must be auto or an integer >= 0, got {size!r}")
    return size


def execution(cfg: Mapping) -> dict:
    """The config's execution choices for mixture runs (``RunContext`` fields, never spec keys)."""
    return {"capture": get(cfg, "mixture.capture", str, choices=CAPTURE_MODES, default="auto")}


def run_groups(specs: Mapping[str, Mapping], size: int) -> dict[str, list[str]]:
    """``{"<protocol>/<model>/group<j>": run keys}``: the ALI and GAN runs in groups of ``size`` (0: all).

    Empty when ``size`` is 1 (every run its own job). The baselines always train alone.
    """
    if size == 1:
        return {}
    by_model: dict[tuple[str, str], list[str]] = {}
    for key, spec in specs.items():
        if spec["model"] in BASE_MODELS:
            by_model.setdefault((spec["protocol"], spec["model"]), []).append(key)
    groups = {}
    for (protocol, model), keys in by_model.items():
        n = size or len(keys)
        for j in range(0, len(keys), n):
            groups[f"{protocol}/{model}/group{j // n}"] = keys[j:j + n]
    return groups


def eval_settings(cfg: Mapping) -> dict:
    k = "mixture.eval."
    return {"n_samples": get(cfg, k + "n_samples", int, positive=True),
            "n_strict_samples": get(cfg, k + "n_strict_samples", int, positive=True),
            "hq_stds": get(cfg, k + "hq_stds", float, positive=True),
            "mmd_samples": get(cfg, k + "mmd_samples", int, low=2),
            "seed": get(cfg, k + "seed", int, low=0)}


# ----------------------------------------------------------------------------------------- building
def build(spec: Mapping, options: StepOptions | None = None) -> Model:
    """The model a spec describes, initialised N(0, init_std^2), with its optimisers; ``options`` say how
    its step executes (default: the spec's precision, capture ``auto``).

    Inverse mapping and post-hoc inference get their frozen decoder from the caller
    (``model.decoder.load_state_dict``), which changes no optimiser: the decoder has none.
    """
    nets = mlp.MixtureNets(**spec["nets"])
    name = spec["model"]
    options = options or StepOptions.from_spec(spec)
    if spec.get("model_class"):
        model = build_plugin(spec["model_class"], spec["model_version"], nets, spec["update"], options, name)
        return _initialise(model, spec, options)
    if name in ("ali", "posthoc"):
        kwargs = {"encoder": ImplicitEncoder(mlp.encoder(nets), nets.noise_dim), "decoder": mlp.decoder(nets),
                  "discriminator": ConcatDiscriminator(mlp.discriminator(nets, joint=True)),
                  "update": spec["update"]}
    elif name == "gan":
        kwargs = {"decoder": mlp.decoder(nets), "update": spec["update"],
                  "discriminator": ConcatDiscriminator(mlp.discriminator(nets, joint=False))}
    elif name == "inverse":
        kwargs = {"encoder": ImplicitEncoder(mlp.encoder(nets), nets.noise_dim), "decoder": mlp.decoder(nets)}
    elif name == "vae":
        kwargs = {"encoder": GaussianEncoder(mlp.encoder(nets, out_dim=2 * nets.z_dim, noise=False)),
                  "decoder": mlp.decoder(nets), "likelihood_std": spec["vae_likelihood_std"]}
    else:
        raise ValueError(f"unknown mixture model {name!r}")
    return _initialise(build_model(name, z_dim=nets.z_dim, **kwargs), spec, options)


def _initialise(model: Model, spec: Mapping, options: StepOptions) -> Model:
    """Step options, N(0, init_std^2) weights and zero biases, one Adam per parameter group: every model alike."""
    model.options = options  # precision and capture, for the solo loop too
    init_normal_(model, spec["init_std"])
    model.configure_optimizers(AdamConfig(**spec["adam"]))
    return model


def load_trained(run_dir: Path, device: torch.device | str = "cpu") -> tuple[Model, dict]:
    """A finished run's model in eval mode, and its record."""
    return load_run(Path(run_dir), build, device)


def mixture_data(spec: Mapping) -> MixtureData:
    return MixtureData(**{**spec["data"], "grid": tuple(spec["data"]["grid"])})


def run_key(spec: Mapping) -> str:
    """The run's name in the plan: ``<protocol>/<model>/run<i>``."""
    return f"{spec['protocol']}/{spec['model']}/run{spec['run']}"


def training_sets(specs: list[Mapping]) -> torch.Tensor:
    """Every run's training set: one (n, x_dim) tensor when the runs share it, else (R, n, x_dim)
    (PacGAN's protocol draws a fresh set per run)."""
    datas = [mixture_data(s) for s in specs]
    if all(d == datas[0] for d in datas):
        return torch.from_numpy(train_set(datas[0])[0])
    if len({d.n_train for d in datas}) != 1:
        raise ValueError("runs of one group must have training sets of one size (mixture.data.n_train)")
    return torch.stack([torch.from_numpy(train_set(d)[0]) for d in datas])


def curve_coverage(specs: list[Mapping], hq_stds: float = HQ_STDS):
    """The training curve's evaluation of run r's samples (N, 2): modes (paper count) and % high quality."""
    datas = [mixture_data(s) for s in specs]

    def coverage(r: int, samples: np.ndarray) -> dict[str, float]:
        return {"modes": paper_modes(datas[r], samples), "hq_pct": strict_metrics(datas[r], samples, hq_stds)["hq_pct"]}

    return coverage


# ----------------------------------------------------------------------------------------- training
def train_run(spec: Mapping, run_dir: Path, *, device: str = "auto", capture: str = "auto",
              source_dir: Path | None = None, checkpoint_every: int = 10_000, log_every: int = 1000,
              progress: bool = True, stop_at: int | None = None) -> dict:
    """Train one run into ``run_dir`` (resuming if a checkpoint is there) and write its record.

    ALI and GAN train through the run-batched engine as a group of one, so a run's seed fixes the
    same weights, noise and data order alone or in a group. The baselines train in the solo loop;
    inverse mapping and post-hoc inference take their frozen decoder from ``source_dir``.
    """
    if spec["model"] in BASE_MODELS:
        return train_group([spec], [run_dir], device=device, capture=capture, checkpoint_every=checkpoint_every,
                           log_every=log_every, progress=progress, stop_at=stop_at)[0]
    prepare, extra = None, {}
    if spec.get("model_class"):
        extra = {"plugin": {"import_path": spec["model_class"], "version": spec["model_version"]}}
    if spec["model"] in NEEDS_SOURCE:
        if source_dir is None:
            raise ValueError(f"model {spec['model']} needs the best GAN run's directory as its source")
        src_model, src_record = load_trained(Path(source_dir))  # refuses diverged or skipped runs
        extra = {"source_run": str(source_dir), "source_config_hash": src_record["config_hash"]}

        def load_source_decoder(model: Model) -> None:
            model.decoder.load_state_dict(src_model.decoder.state_dict())

        prepare = load_source_decoder

    x, _ = train_set(mixture_data(spec))
    options = StepOptions.from_spec(spec, capture=capture)  # the spec's precision, the context's capture
    return run_training(spec, run_dir, build=lambda s: build(s, options), data=torch.from_numpy(x), device=device,
                             prepare=prepare, extra_record=extra,
                             desc=f"{spec['protocol']}/{spec['model']}/run{spec['run']}", checkpoint_every=checkpoint_every,
                             log_every=log_every, progress=progress, stop_at=stop_at)


def train_group(specs: list[Mapping], run_dirs: list[Path], *, device: str = "auto", capture: str = "auto",
                checkpoint_every: int = 10_000, log_every: int = 1000, progress: bool = True,
                stop_at: int | None = None) -> list[dict]:
    """ALI (or GAN) runs as one batched model (``ali.engine``), with the precision their specs name and
    the ``capture`` of the run context; the training curve's coverage every ``CURVE_EVERY`` log intervals."""
    return train_batched(specs, run_dirs, device=device, capture=capture,
                         precision=specs[0].get("precision", "fp32"), checkpoint_every=checkpoint_every,
                         log_every=log_every, eval_every=CURVE_EVERY * log_every, progress=progress, stop_at=stop_at)


def train_batched(specs: list[Mapping], run_dirs: list[Path], **options) -> list[dict]:
    """``ali.train.group.train_group`` given the mixture's models, training sets and curve coverage;
    ``options`` as there (device, capture, precision, checkpoint_every, log_every, eval_every, ...)."""
    return lifecycle_group.train_group(specs, run_dirs, build=build, data=training_sets(specs),
                                       names=[run_key(s) for s in specs], evaluate=curve_coverage(specs),
                                       eval_columns=CURVE_COLUMNS, eval_samples=EVAL_SAMPLES, eval_seed=EVAL_SEED,
                                       **options)


# --------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_run(run_dir: Path, settings: Mapping) -> dict:
    """Coverage of generator samples, and inference metrics for models with an encoder."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    if record["status"] in ("skipped", "diverged"):
        return {"run_dir": str(run_dir), "config_hash": record["config_hash"], "eval": dict(settings),
                "model": record["spec"]["model"], "protocol": record["spec"]["protocol"],
                "status": record["status"]}
    model, record = load_trained(run_dir)
    spec = record["spec"]
    data = mixture_data(spec)
    metrics: dict = {"run_dir": str(run_dir), "config_hash": record["config_hash"], "eval": dict(settings),
                     "model": spec["model"], "protocol": spec["protocol"]}
    metrics.update(mixture_metrics(data, run_outputs(model, data, settings), settings))
    metrics["metrics_version"] = MIXTURE_METRICS_VERSION
    return metrics


@torch.no_grad()
def run_outputs(model: Model, data: MixtureData, settings: Mapping) -> MixtureOutputs:
    """What a model is measured on: ``n_samples``, then ``n_strict_samples`` generator samples, and, with
    an encoder, its codes and reconstructions of the held-out set, all after seeding ``settings["seed"]``."""
    torch.manual_seed(settings["seed"])  # the same evaluation noise for every run: paired comparisons
    x_paper = model.decode(model.prior(settings["n_samples"]))
    x_strict = model.decode(model.prior(settings["n_strict_samples"]))
    codes = None
    if model.has_encoder:
        x_held, labels = heldout_set(data)
        x = torch.from_numpy(x_held)
        z = model.encode(x)
        codes = Codes(inputs=x, labels=labels, latents=z, reconstructions=model.decode(z))
    return MixtureOutputs(x_paper=x_paper, x_strict=x_strict, codes=codes)


def best_run(metrics: list[dict]) -> dict | None:
    """The best-covering run: most modes (paper count), then strict modes, % high quality, lower KL."""
    ok = [m for m in metrics if m.get("status") == "ok"]
    if not ok:
        return None

    def key(m):
        kl = m["reverse_kl"] if np.isfinite(m["reverse_kl"]) else np.inf
        return (-m["modes"], -m["strict_modes"], -m["hq_pct"], kl, m["run_dir"])

    return min(ok, key=key)


def choose_best(metrics: list[dict]) -> dict:
    """best.json: the best-covering ALI and GAN runs of one protocol (None where every run failed)."""
    best: dict = {}
    for model in BASE_MODELS:
        chosen = best_run([m for m in metrics if m["model"] == model])
        best[model] = chosen["run_dir"] if chosen else None
        best[f"{model}_modes"] = chosen["modes"] if chosen else None
    best["criterion"] = "most modes (paper count), then strict modes, %HQ, lower reverse KL: our choice"
    return best


def best_plugin_runs(metrics: list[dict]) -> dict[str, str | None]:
    """Each plug-in model's best-covering run directory (the ALI and GAN rule), None where none finished."""
    by_model: dict[str, list[dict]] = {}
    for m in metrics:
        by_model.setdefault(m["model"], []).append(m)
    best = {}
    for model, runs in sorted(by_model.items()):
        chosen = best_run(runs)
        best[model] = chosen["run_dir"] if chosen else None
    return best


def figure8_models(best: Mapping, baseline_dirs: list[Path], plugin_dirs: Mapping[str, str | None] | None = None
                   ) -> tuple[dict, dict | None]:
    """Figure 8's columns (key -> (model or None, reason)), and the spec of one run it shows; the
    plug-in models' best runs (``plugin_dirs``) after the paper's four columns."""
    dirs = {"ali": best.get("ali")} | {Path(d).parent.name: d for d in baseline_dirs} | dict(plugin_dirs or {})
    models, shown = {}, None
    for key, d in dirs.items():
        if d is None:
            models[key] = (None, "no usable run")
            continue
        record = read_record(Path(d))
        if record["status"] != "ok":
            models[key] = (None, record["status"])
            continue
        model, record = load_trained(Path(d))
        models[key] = (model, "")
        shown = record["spec"]
    return models, shown


@register
class Mixture(Experiment):
    """The 25-mode mixture (section 4.5): coverage of ALI against GAN, and the inference baselines."""

    name = "mixture"
    spec_type = MixtureRun
    models = BASE_MODELS + BASELINES
    base_models, baselines = BASE_MODELS, BASELINES  # the workflow's best.json and Figure 8 read these
    checkpoint_every, log_every = 10_000, 1000
    reports = {
        "best": ("report_best", "best.json: the best-covering ALI and GAN runs of one protocol "
                                "(most modes, then strict modes, %HQ, lower reverse KL: our choice)"),
        "mixture-tables": ("report_tables", "mixture_runs.csv (one row per run) and mixture.csv (per "
                                            "protocol x model, the paper's and PacGAN's numbers beside ours)"),
        "figure8": ("report_figure8", "the paper's Figure 8 for one protocol: the best ALI and the baselines, "
                                      "then each plug-in model's best run (--in plugins=METRICS ...)"),
        "publish": ("report_publish", "results/published/mixture/<protocol>/: one protocol's paper-scale rows, "
                                      "summary, Figure 8 and provenance, refused unless every run of its paper "
                                      "plan is in (--in runs=CSV table=CSV [figure=PNG] --out dir=DIR "
                                      "--settings '{\"protocol\": \"random\"}')"),
    }

    def plan(self, cfg):
        return plan(cfg)

    def jobs(self, plan, cfg):
        """ALI and GAN runs of a protocol in groups of ``mixture.group_size`` (each group one batched
        model); the baselines, and every run when the size is 1, train alone."""
        groups = run_groups(plan, group_size(cfg))
        grouped = {key for keys in groups.values() for key in keys}
        return {**{key: [key] for key in plan if key not in grouped}, **groups}

    def execution(self, cfg):
        return execution(cfg)

    @staticmethod
    def plugin_models(plan: Mapping[str, Mapping]) -> list[str]:
        """The plug-in models (``mixture.extra_models``) a plan trains, in plan order."""
        return list(dict.fromkeys(s["model"] for s in plan.values() if s.get("model_class")))

    def upstream(self, spec):
        return {"best": f"{self.name}/{spec['protocol']}/best.json"} if spec["model"] in NEEDS_SOURCE else {}

    def settings(self, cfg):
        return eval_settings(cfg)

    def train_run(self, spec, run_dir, ctx: RunContext) -> dict:
        source = None
        if spec["model"] in NEEDS_SOURCE:
            best_path = ctx.input("best")
            if best_path is None:
                raise ConfigError(f"model {spec['model']} trains on the best GAN run: pass --in best=best.json")
            best = read_json(best_path)
            if best.get("gan") is None:
                return skip_run(spec, run_dir, "no GAN run of this protocol finished without diverging")
            source = Path(best["gan"])
        return train_run(spec, run_dir, source_dir=source, capture=ctx.capture, **ctx.loop_options(self, spec["steps"]))

    def train_group(self, specs, run_dirs, ctx: RunContext) -> list[dict]:
        if any(spec["model"] not in BASE_MODELS for spec in specs):
            return super().train_group(specs, run_dirs, ctx)
        return train_group(specs, run_dirs, capture=ctx.capture, **ctx.loop_options(self, min(s["steps"] for s in specs)))

    def evaluate_run(self, run_dir, settings, ctx):
        return evaluate_run(run_dir, settings)

    def our_choices(self, spec):
        notes = []
        paired = spec["model"] in BASE_MODELS or bool(spec.get("model_class"))  # run i's seed and draw
        if spec.get("model_class"):
            notes.append(f"plug-in model {spec['model_class']} version {spec['model_version']}: not in the paper; "
                         "trained with ALI and GAN run i's seed, hyperparameters, budget and data")
        if spec.get("protocol_kind") == "random" and paired:
            notes.append("random lr/beta1/init-std ranges (beta1 range in PyTorch's convention): our choice "
                         "(see config mixture.protocols)")
            notes.append("ALI run i and GAN run i share their seed and hyperparameter draw (paired): our choice")
        if spec.get("protocol_kind") == "fixed" and paired:
            notes.append("the released code's hyperparameters at the paper's budget on one training set; "
                         "no published number uses exactly this protocol")
        if spec.get("protocol_kind") == "pacgan" and paired:
            notes.append("training-set seed per run (data_seed + run): our choice; PacGAN drew a fresh set per run")
        if spec["model"] in BASELINES:
            notes.append("baseline optimiser, init and step budget: our choice")
        if spec["model"] in NEEDS_SOURCE:
            notes.append("source = best-covering GAN by modes, then strict modes, %HQ, reverse KL: our choice")
        if spec["model"] == "vae":
            notes.append(f"VAE Gaussian q(z|x) and Gaussian p(x|z) with std {spec['vae_likelihood_std']}: our choice")
        if spec.get("update") == "alternating":
            notes.append("alternating D/G updates: deviation from the released code's simultaneous updates")
        return notes

    def spec_columns(self, spec):
        adam = AdamConfig(**spec["adam"])
        b1, b2 = adam.torch_betas()
        return {"protocol": spec["protocol"], "protocol_kind": spec.get("protocol_kind"), "model": spec["model"],
                "run": spec["run"], "seed": spec["seed"], "lr": adam.lr, "beta1_torch": b1, "beta2_torch": b2,
                "adam_config_convention": adam.convention, "init_std": spec["init_std"], "update": spec["update"],
                "batch_size": spec["batch_size"], "model_class": spec.get("model_class", ""),
                "model_version": spec.get("model_version", "")}

    def metric_rows(self, metrics):
        return [{name: metrics.get(name, np.nan) for name in RUN_METRICS}]

    def report_best(self, inputs, outputs, settings, ctx):
        write_json(outputs["best"], choose_best([read_json(p) for p in inputs["metrics"]]))

    def report_tables(self, inputs, outputs, settings, ctx):
        frame = runs_frame(inputs["runs"], sort=["protocol", "model", "run"])
        write_csv(frame, outputs["runs"])
        write_csv(mixture_summary(frame), outputs["table"])

    def report_publish(self, inputs, outputs, settings, ctx):
        from ali.config import PRESET_DIR, load_config

        protocol = settings.get("protocol")
        paper = plan(load_config(PRESET_DIR / "paper.yaml"))
        planned = [key for key in paper if key.startswith(f"{protocol}/")]
        if not planned:
            protocols = sorted({key.split("/")[0] for key in paper})
            raise ConfigError(f"--settings protocol {protocol!r} is not in the paper plan; pass one of {protocols}")
        figure = inputs.get("figure", [None])[0]
        publish_protocol(inputs["runs"][0], inputs["table"][0], figure, protocol, planned, outputs["dir"])

    def report_figure8(self, inputs, outputs, settings, ctx):
        from ali.report.figures import figure8  # matplotlib loads only when a figure is drawn

        best = read_json(inputs["best"][0])
        plugins = best_plugin_runs([read_json(p) for p in inputs.get("plugins", [])])
        models, shown = figure8_models(best, inputs.get("baselines", []), plugins)
        if shown is None:
            raise ConfigError("no model in Figure 8 finished training; see the runs' record.json")
        title = f"Figure 8, {shown['protocol']} protocol ({shown['preset']} preset)"
        figure8(models, mixture_data(shown), outputs["figure"], title, extra_columns=list(plugins))
