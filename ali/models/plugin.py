"""Models from outside the suite, named by import path (``package.module:Class``): the plug-in contract.

A config entry ``mixture.extra_models: {NAME: "package.module:Class"}`` trains ``Class`` under every
mixture protocol beside ALI and GAN. What the suite does with it, and what it must provide:

**It receives** the mixture's network sizes and step settings, through one classmethod::

    @classmethod
    def from_mixture(cls, nets: ali.nets.mlp.MixtureNets, update: str, options: StepOptions) -> Model

``nets`` are the sizes ALI and GAN are built from (``x_dim``, ``z_dim``, ``noise_dim``, ``gen_hidden``,
layer counts, ``disc_hidden``, ``maxout_pieces``); ``ali.nets.mlp.encoder / decoder / discriminator``
build the paper's networks from them. ``update`` is ``mixture.train.update`` (``simultaneous``, the
released code, or ``alternating``); ``options`` say how the step executes (precision, CUDA-graph
capture) and belong in ``Model.__init__(options)``.

**The suite then**, exactly as for ALI and GAN run i: seeds every RNG with run i's seed before
``from_mixture``; sets every Linear/Conv weight ~ N(0, init_std^2) and every bias to 0 (run i's
init std); builds one Adam per entry of ``optimized_parameters()`` with run i's learning rate and
betas; trains ``steps`` steps on the protocol's training set in run i's data order, calling
``step_noise`` then ``train_step`` each step (``ali.train.loop``: resume from checkpoints, history,
a non-finite loss recorded as a diverged run); evaluates the final weights in eval mode under
``torch.no_grad()`` with the same metrics and evaluation noise (``ali.experiments.mixture.evaluate_run``).

**It must provide** (an ``ali.models.base.Model`` subclass; ``AdversarialModel`` gives the update rules):

- ``from_mixture`` as above; a ``z_dim`` attribute;
- ``loss_names``: the keys of ``train_step``'s output, in order;
- ``optimized_parameters() -> {name: [parameters]}`` (``AdversarialModel``: ``d_parameters`` and
  ``g_parameters``);
- ``train_step(x, **noise) -> {loss name: 0-d tensor}``: one whole step, gradients and optimiser steps;
- ``decode(z) -> x`` and ``prior(n) -> z`` (``Model``'s defaults: ``self.decoder(z)`` and N(0, I));
- ``encode(x) -> z`` for the inference metrics and Figure 8's latent and reconstruction rows, or
  ``has_encoder = False``;
- optionally ``noise_names`` / ``noise_shapes``, so the step's noise is drawn outside it (needed only
  for CUDA-graph capture; ``Model`` documents them).

Its version is the module's ``__version__`` if it has one, else a hash of the module's source file:
it enters the run spec, so a changed model never resumes an old checkpoint or hides behind old rows.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import sys
from dataclasses import dataclass
from types import ModuleType

from ali.config import ConfigError
from ali.models.base import Model, StepOptions
from ali.nets.mlp import MixtureNets

IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
REQUIRED = ("from_mixture", "loss_names", "optimized_parameters", "train_step", "decode", "prior")
ABSTRACT = ("optimized_parameters", "train_step")  # Model declares these and raises NotImplementedError
CONTRACT = "see the contract in ali/models/plugin.py"


@dataclass(frozen=True)
class Plugin:
    """A resolved plug-in model: the import path it was named by, its class and its version."""

    import_path: str
    cls: type
    version: str


def _import_module(name: str, key: str) -> ModuleType:
    """``name`` imported as ``python -m`` would find it: installed packages, then the working directory."""
    for attempt in (0, 1):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as err:
            missing_itself = err.name is not None and (name == err.name or name.startswith(err.name + "."))
            if attempt or not missing_itself or os.getcwd() in sys.path:
                raise ConfigError(f"config key {key!r}: cannot import {name!r} ({err}); install it, or run from "
                                  f"the folder that holds it") from err
            sys.path.append(os.getcwd())  # `snakemake` (unlike `python -m`) leaves the working directory off the path
        except Exception as err:  # noqa: BLE001  (an error inside the user's module, said in one line)
            raise ConfigError(f"config key {key!r}: importing {name!r} raised {type(err).__name__}: {err}") from err
    raise AssertionError("unreachable")


def load_class(import_path: str, key: str) -> type:
    """The class at ``package.module:Class``, checked against the contract; ConfigError names ``key``."""
    if not isinstance(import_path, str) or not IMPORT_PATH.fullmatch(import_path):
        raise ConfigError(f"config key {key!r} must be an import path 'package.module:Class', got {import_path!r}")
    module_name, _, attr = import_path.partition(":")
    obj = _import_module(module_name, key)
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"config key {key!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    check_contract(obj, import_path, key)
    return obj


def check_contract(cls: object, import_path: str, key: str) -> None:
    """What can be checked before building: a Model subclass with every required member."""
    if not isinstance(cls, type):
        raise ConfigError(f"config key {key!r}: {import_path} is not a class; {CONTRACT}")
    missing = [name for name in REQUIRED
               if not hasattr(cls, name) or (name in ABSTRACT and getattr(cls, name) is getattr(Model, name))]
    if missing:
        raise ConfigError(f"config key {key!r}: {import_path} lacks {', '.join(missing)}; {CONTRACT}")
    if not issubclass(cls, Model):
        raise ConfigError(f"config key {key!r}: {import_path} must subclass ali.models.base.Model; {CONTRACT}")
    if cls.has_encoder and cls.encode is Model.encode:
        raise ConfigError(f"config key {key!r}: {import_path} has no encode(x); define it, or set "
                          f"has_encoder = False; {CONTRACT}")


def model_version(cls: type) -> str:
    """The module's ``__version__``, else ``sha256:<12 hex>`` of its source file."""
    module = sys.modules[cls.__module__]
    version = getattr(module, "__version__", None)
    if version is not None:
        return str(version)
    path = getattr(module, "__file__", None)
    if path is None:
        raise ConfigError(f"model {cls.__module__}.{cls.__name__} has neither __version__ nor a source file")
    with open(path, "rb") as f:
        return "sha256:" + hashlib.sha256(f.read()).hexdigest()[:12]


def resolve(import_path: str, key: str) -> Plugin:
    cls = load_class(import_path, key)
    return Plugin(import_path, cls, model_version(cls))


def build_plugin(spec_model_class: str, spec_version: str, nets: MixtureNets, update: str,
                 options: StepOptions, name: str) -> Model:
    """The plug-in model a run spec names, built as the contract says; refuses a changed model."""
    key = f"mixture.extra_models.{name}"
    plugin = resolve(spec_model_class, key)
    if plugin.version != spec_version:
        raise ConfigError(f"{spec_model_class} is now version {plugin.version}, but this run was planned with "
                          f"{spec_version}: re-run snakemake (or `ali plan`) so the run is planned anew")
    model = plugin.cls.from_mixture(nets, update, options)
    if not isinstance(model, Model) or not isinstance(getattr(model, "z_dim", None), int):
        raise ConfigError(f"{spec_model_class}.from_mixture must return the model, with an integer z_dim; {CONTRACT}")
    return model
