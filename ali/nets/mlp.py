"""The mixture experiment's networks, exactly as REFERENCE.md gives them (section 4.5)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ali.nets.layers import Maxout, bn_linear_relu


@dataclass(frozen=True)
class MixtureNets:
    x_dim: int = 2
    z_dim: int = 2
    noise_dim: int = 2  # the implicit encoder's epsilon, concatenated to x
    gen_hidden: int = 400
    encoder_layers: int = 2
    decoder_layers: int = 4
    disc_hidden: int = 200
    disc_layers: int = 3
    maxout_pieces: int = 5


class MLP(nn.Sequential):
    """Hidden layers of Linear(no bias) -> BN -> ReLU, then a Linear with bias and no nonlinearity."""

    def __init__(self, in_dim: int, hidden: int, n_hidden: int, out_dim: int):
        dims = [in_dim] + [hidden] * n_hidden
        layers = [bn_linear_relu(a, b) for a, b in zip(dims[:-1], dims[1:])]
        super().__init__(*layers, nn.Linear(dims[-1], out_dim))


class MaxoutDiscriminator(nn.Sequential):
    """maxout(in -> 200, 5) -> maxout(200 -> 200, 5) x2 -> Linear(200 -> 1); outputs logits (B,)."""

    def __init__(self, in_dim: int, hidden: int, n_layers: int, pieces: int):
        dims = [in_dim] + [hidden] * n_layers
        layers = [Maxout(a, b, pieces) for a, b in zip(dims[:-1], dims[1:])]
        super().__init__(*layers, nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).squeeze(-1)


def encoder(n: MixtureNets, out_dim: int | None = None, noise: bool = True) -> MLP:
    """G_z: concat(x, eps) -> 400 -> 400 -> z. ``noise=False, out_dim=2*z`` gives the VAE's Gaussian head."""
    in_dim = n.x_dim + (n.noise_dim if noise else 0)
    return MLP(in_dim, n.gen_hidden, n.encoder_layers, out_dim or n.z_dim)


def decoder(n: MixtureNets) -> MLP:
    """G_x: z -> 400 -> 400 -> 400 -> 400 -> x, deterministic."""
    return MLP(n.z_dim, n.gen_hidden, n.decoder_layers, n.x_dim)


def discriminator(n: MixtureNets, joint: bool) -> MaxoutDiscriminator:
    """D(x, z) on concat(x, z) for ALI, or D(x) for the GAN baseline."""
    in_dim = n.x_dim + (n.z_dim if joint else 0)
    return MaxoutDiscriminator(in_dim, n.disc_hidden, n.disc_layers, n.maxout_pieces)
