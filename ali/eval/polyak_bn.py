"""Polyak-averaged weights evaluated with batch-norm statistics that belong to them.

improved-gan's K+1 discriminator has weight normalisation and no BN, so testing with its averaged
weights is exact. Ours has BN (D(x) of SVHN, CelebA and Tiny ImageNet; every encoder): the running
statistics were gathered under the weights of each training step, not under their average.
``polyak_bn_model`` returns a copy whose averaged networks hold the Polyak averages, with the statistics
of their BN layers re-estimated by one pass over training data under those weights: in train mode (batch
statistics, dropout on, as the running statistics were gathered in training), with no gradient, as the
cumulative average over the batches (PyTorch's ``momentum=None``). Nothing else changes, and the trained
model is left untouched.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ali.models.kplus1 import _avg_name  # the model's own naming of its average buffers
from ali.data.batches import as_model_input


def averaged_copy(model: nn.Module) -> nn.Module:
    """A deep copy of a K+1 model whose averaged parameters hold their Polyak averages (no optimisers)."""
    optimizers, model.optimizers = model.optimizers, {}
    try:
        twin = copy.deepcopy(model)
    finally:
        model.optimizers = optimizers
    with torch.no_grad():
        for name, param in twin._averaged_params():
            param.copy_(getattr(twin, _avg_name(name)))
    return twin


def batchnorms(modules: Iterable[nn.Module]) -> list[tuple[str, _BatchNorm]]:
    """Every BN layer inside ``modules`` (named by its position), in order."""
    return [(f"{i}.{name}", m) for i, mod in enumerate(modules) for name, m in mod.named_modules()
            if isinstance(m, _BatchNorm)]


@torch.no_grad()
def reestimate_bn(model: nn.Module, batches: Iterable[torch.Tensor], modules: Iterable[nn.Module] | None = None,
                  seed: int = 0) -> int:
    """Replace the running statistics of the BN layers in ``modules`` (default: all of ``model``) by their
    cumulative average over ``model(x)`` for x in ``batches``, in train mode; returns the number of batches.

    Parameters, other buffers and each BN's momentum are unchanged afterwards; the model is returned to
    its train/eval state. Dropout masks come from ``seed`` (the global RNG is left as it was). Raises
    ValueError if a BN layer is never reached by the forward pass (its statistics would be empty).
    """
    layers = batchnorms([model] if modules is None else modules)
    momenta = [m.momentum for _, m in layers]
    modes = {m: m.training for m in model.modules()}
    for _, m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: running = mean of the per-batch statistics
    n = 0
    try:
        model.train()
        device = next(model.parameters()).device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            for x in batches:
                model(x)
                n += 1
    finally:
        for (_, m), momentum in zip(layers, momenta):
            m.momentum = momentum
        for m, mode in modes.items():
            m.training = mode
    missed = [name for name, m in layers if int(m.num_batches_tracked) != n]
    if n == 0 or missed:
        raise ValueError(f"BN re-estimation saw {n} batches; layers not reached by model(x): {missed or 'all'}")
    return n


def training_batches(images_uint8: torch.Tensor, batch_size: int, device: torch.device | str,
                     max_batches: int | None = None) -> Iterator[torch.Tensor]:
    """Full batches of training images in order, as model input ([0, 1] floats on ``device``)."""
    n_batches = len(images_uint8) // batch_size
    if max_batches is not None:
        n_batches = min(n_batches, max_batches)
    for i in range(n_batches):
        yield as_model_input(images_uint8[i * batch_size:(i + 1) * batch_size].to(device))


def polyak_bn_model(model: nn.Module, images_uint8: torch.Tensor, batch_size: int, *, seed: int = 0,
                    max_batches: int | None = None) -> nn.Module:
    """The K+1 model to test with: Polyak-averaged weights, BN statistics re-estimated under them.

    Call its ``class_logits(x, polyak=False)``: its own weights are the averages.
    """
    twin = averaged_copy(model)
    device = next(twin.parameters()).device
    reestimate_bn(twin, training_batches(images_uint8, batch_size, device, max_batches),
                  modules=[getattr(twin, name) for name in twin.averaged], seed=seed)
    return twin.eval()
