"""Encoders that sample z given x, and a discriminator on (x, z) pairs.

Every encoder's ``forward(x, eps)`` returns a sample z ~ q(z | x), so the models never need to know
whether q is implicit (noise fed in, the mixture experiment) or Gaussian (reparametrised). ``eps``
(``noise_dim(z_dim)`` columns) is the sample's noise; left out, it is drawn from the global RNG.
"""

from __future__ import annotations

import torch
from torch import nn


class ImplicitEncoder(nn.Module):
    """z = net(concat(x, eps)), eps ~ N(0, I): the mixture experiment's stochastic encoder."""

    def __init__(self, net: nn.Module, noise_dim: int):
        super().__init__()
        self.net, self.noise_dim = net, noise_dim

    def noise_columns(self, z_dim: int) -> int:
        return self.noise_dim

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        if eps is None:
            eps = torch.randn(x.shape[0], self.noise_dim, device=x.device, dtype=x.dtype)
        return self.net(torch.cat([x, eps], dim=1))


class GaussianEncoder(nn.Module):
    """net(x) = (mu, log sigma) along dim 1; ``forward`` samples with the reparametrisation trick."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def preactivations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The wrapped network's per-layer pre-activations (the last is (mu, log sigma))."""
        return self.net.preactivations(x)

    def distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_sigma = self.net(x).chunk(2, dim=1)
        return mu, log_sigma

    def noise_columns(self, z_dim: int) -> int:
        return z_dim

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        mu, log_sigma = self.distribution(x)
        eps = torch.randn_like(mu) if eps is None else eps.to(mu.dtype)  # (bf16 autocast: as randn_like drew)
        return mu + torch.exp(log_sigma) * eps


class ConcatDiscriminator(nn.Module):
    """D(x, z) = net(concat(x, z)), or D(x) = net(x) when used without z (the GAN baseline)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x if z is None else torch.cat([x, z], dim=1))
