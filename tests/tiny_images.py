"""Tiny image models for fast loop tests: an 8x8 architecture with every kind of layer the appendix
tables use (BN, dropout, tied and untied biases), built through the experiments' own ``build``.
Tests register ``TINY`` with :func:`register_tiny_arch` (an autouse fixture) before building."""

from __future__ import annotations

import copy
import csv
import dataclasses
from pathlib import Path

import conftest
import torch

from ali.config import load_config
from ali.experiments import images as im
from ali.experiments import semisup
from ali.train.progress import HISTORY
from ali.nets.architectures import CONV, CONVT, LINEAR, LRELU, SIGMOID, SVHN, TIED, UNTIED, L
from ali.train.loop import train
from ali.train.runtime import seed_everything

SMOKE = load_config(conftest.SMOKE)

TINY = dataclasses.replace(
    SVHN, name="tiny_test", table="tests", image_size=8, z_dim=4,
    encoder=(L(CONV, 3, 1, 8, True, 0.0, LRELU), L(CONV, 3, 2, 16, True, 0.0, LRELU),
             L(CONV, 2, 1, 8, False, 0.0, LINEAR, TIED)),                       # 8 -> 6 -> 2 -> 1, 2 * z_dim out
    decoder=(L(CONVT, 2, 1, 16, True, 0.0, LRELU), L(CONVT, 3, 2, 8, True, 0.0, LRELU),
             L(CONVT, 4, 1, 8, True, 0.0, LRELU), L(CONV, 1, 1, 3, False, 0.0, SIGMOID, UNTIED)),  # 1 -> 2 -> 5 -> 8
    disc_x=(L(CONV, 3, 1, 8, False, 0.2, LRELU, TIED), L(CONV, 3, 2, 16, True, 0.2, LRELU),
            L(CONV, 2, 1, 16, True, 0.2, LRELU)),
    disc_z=(L(CONV, 1, 1, 16, False, 0.2, LRELU),),
    disc_joint=(L(CONV, 1, 1, 32, False, 0.2, LRELU, TIED), L(CONV, 1, 1, 1, False, 0.2, LINEAR, TIED)),
    lr=1e-3, batch_size=8)
IMAGE_MODELS, KPLUS1_MODELS = ("ali", "gan", "vae"), ("gan_fm", "ali_kplus1")
BATCH, N_DATA, N_LABELLED = 8, 48, 20


def register_tiny_arch(monkeypatch) -> None:
    """Make ``TINY`` an architecture the experiments' ``build`` can name: the tables as printed, the
    resolved specs, and its (no) release-vs-table options (``ali.nets.architectures.architecture`` reads all three)."""
    from ali.nets import architectures

    monkeypatch.setitem(architectures._TABLES, TINY.name, TINY)
    monkeypatch.setitem(architectures.OPTIONS, TINY.name, ())
    monkeypatch.setitem(architectures.ARCHITECTURES, TINY.name, TINY)


def tiny_spec(model: str, **over) -> dict:
    """The smoke plan's digits run of ``model`` on the tiny architecture: batch 8, 20 steps."""
    if model in IMAGE_MODELS:
        spec = copy.deepcopy(im.plan(SMOKE)[f"digits/{model}/seed0"])
    else:
        spec = copy.deepcopy(semisup.plan(SMOKE)[f"digits/{model}/labels100/seed0"])
        spec.update(steps_per_epoch=N_DATA // BATCH, epochs=4, decay_epochs=2)  # the lr decays within the run
    spec.update(arch=TINY.name, batch_size=BATCH, steps=20, init_std=0.05,
                adam={"lr": 1e-3, "beta1": 0.5, "beta2": 0.999, "convention": "torch"})
    spec.update(over)
    return spec


def tiny_data(seed: int = 0) -> torch.Tensor:
    """(48, 3, 8, 8) uint8 images; the first 20 double as the K+1 models' labelled set."""
    return torch.randint(0, 256, (N_DATA, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def build(spec: dict, data: torch.Tensor):
    """The model as run_training builds it: seeded, then prepared with the data."""
    seed_everything(spec["seed"])
    if spec["model"] in IMAGE_MODELS:
        model = im.build(spec)
    else:
        model = semisup.build(spec)
        model.set_labelled(data[:N_LABELLED], torch.arange(N_LABELLED) % spec["n_classes"])
    model.decoder.init_output_bias(data.float() / 255.0)
    return model


def run_loop(spec: dict, run_dir: Path, data: torch.Tensor, **kw):
    """Build, then train with ``ali.train.loop.train`` (a history row every step unless ``log_every`` says)."""
    model = build(spec, data.cpu()).to(data.device)  # as run_training: built on CPU, then moved
    kw = {"checkpoint_every": 1000, "log_every": 1, "progress": False, **kw}
    result = train(model, data, steps=spec["steps"], batch_size=BATCH, seed=spec["seed"], run_dir=run_dir,
                   run_hash="h", **kw)
    return model, result


def history_losses(run_dir: Path) -> list[dict]:
    """history.csv's rows without the wall-clock column."""
    with open(run_dir / HISTORY, newline="") as f:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]


def assert_same_training_state(a, b) -> None:
    """Weights, buffers and every optimiser's state bit for bit."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa), [k for k in sa if not torch.equal(sa[k], sb[k])]
    for name in a.optimizers:
        oa, ob = a.optimizers[name].state_dict()["state"], b.optimizers[name].state_dict()["state"]
        assert oa.keys() == ob.keys()
        assert all(torch.equal(oa[i][k], ob[i][k]) for i in oa for k in oa[i]), name
