"""What every model shares: optimisers, the update rules, and the registry.

A model is an ``nn.Module`` that owns its networks and optimisers and exposes
``train_step(x) -> {name: loss}``; the one training loop (``ali.train``) needs nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import nn

from ali.optim import AdamConfig, make_adam

UPDATES = ("simultaneous", "alternating")


class Model(nn.Module):
    """Base class: networks are submodules, optimisers live in ``self.optimizers``."""

    name: ClassVar[str]
    has_encoder: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.amp = False  # bf16 autocast of the forward pass on CUDA (an option, off by default)
        self.channels_last = False  # the loop then feeds image batches in channels-last layout

    def autocast(self, x: torch.Tensor):
        """bf16 autocast for the losses' forward pass when ``amp`` is on and x is on a GPU."""
        return torch.autocast(device_type=x.device.type, dtype=torch.bfloat16,
                              enabled=self.amp and x.device.type == "cuda")

    def train_step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def on_step(self, step: int) -> None:
        """Called by the training loop before each step with its index (resume-safe: no hidden state)."""

    # Evaluation interface (call under torch.no_grad() in eval mode).
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} has no encoder")

    def prior(self, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=device)

    def optimizer_state(self) -> dict:
        return {k: opt.state_dict() for k, opt in self.optimizers.items()}

    def load_optimizer_state(self, state: dict) -> None:
        for k, opt in self.optimizers.items():
            opt.load_state_dict(state[k])


class AdversarialModel(Model):
    """Two players: the discriminator (D) and the generators (G: decoder, and encoder if any).

    ``simultaneous`` (the released code): one forward pass; D moves along -grad L_D and G along
    -grad L_G, both gradients taken at the same parameters. ``alternating`` is a deviation,
    offered as a named option: D steps first, then a fresh forward pass for G's step.
    """

    def __init__(self, update: str) -> None:
        super().__init__()
        if update not in UPDATES:
            raise ValueError(f"update must be one of {UPDATES}, got {update!r}")
        self.update = update

    def d_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())

    def g_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def losses(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_D, L_G) from one forward pass."""
        raise NotImplementedError

    def configure_optimizers(self, adam: AdamConfig) -> None:
        self.optimizers = {"d": make_adam(self.d_parameters(), adam), "g": make_adam(self.g_parameters(), adam)}

    def train_step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        d_params, g_params = self.d_parameters(), self.g_parameters()
        if self.update == "simultaneous":
            with self.autocast(x):
                loss_d, loss_g = self.losses(x)
            _apply_grads(d_params, torch.autograd.grad(loss_d, d_params, retain_graph=True))
            _apply_grads(g_params, torch.autograd.grad(loss_g, g_params))
            self.optimizers["d"].step()
            self.optimizers["g"].step()
        else:
            with self.autocast(x):
                loss_d, _ = self.losses(x)
            _apply_grads(d_params, torch.autograd.grad(loss_d, d_params))
            self.optimizers["d"].step()
            with self.autocast(x):
                _, loss_g = self.losses(x)
            _apply_grads(g_params, torch.autograd.grad(loss_g, g_params))
            self.optimizers["g"].step()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}


class SingleObjectiveModel(Model):
    """One loss, one optimiser over every trainable parameter."""

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def configure_optimizers(self, adam: AdamConfig) -> None:
        self.optimizers = {"model": make_adam([p for p in self.parameters() if p.requires_grad], adam)}

    def train_step(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        with self.autocast(x):
            loss = self.loss(x)
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}


class FrozenDecoderMixin:
    """For inference learned after the fact: the decoder is fixed, in inference mode, never updated."""

    def freeze_decoder(self) -> None:
        self.decoder.requires_grad_(False)
        self.decoder.eval()

    def train(self, mode: bool = True):  # keep the frozen decoder's BN on population statistics
        super().train(mode)
        self.decoder.eval()
        return self


def _apply_grads(params: list[nn.Parameter], grads: tuple[torch.Tensor, ...]) -> None:
    for p, g in zip(params, grads):
        p.grad = g


MODELS: dict[str, Callable[..., Model]] = {}


def register(cls):
    MODELS[cls.name] = cls
    return cls


def build_model(name: str, **kwargs) -> Model:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    return MODELS[name](**kwargs)
