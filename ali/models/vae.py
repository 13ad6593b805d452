"""VAE with the same encoder/decoder architecture: Gaussian q(z|x), Gaussian p(x|z) of fixed std.

Both heads are our choice (REFERENCE.md): q(z|x) = N(mu, sigma^2) from the encoder's last layer,
and p(x|z) = N(G_x(z), likelihood_std^2 I) with ``likelihood_std`` from the config.
"""

from __future__ import annotations

import math

import torch

from ali.models.base import SingleObjectiveModel, register
from ali.models.losses import gaussian_kl_standard
from ali.nets.stochastic import GaussianEncoder


@register
class VAE(SingleObjectiveModel):
    name = "vae"

    def __init__(self, encoder: GaussianEncoder, decoder: torch.nn.Module, z_dim: int, likelihood_std: float):
        super().__init__()
        self.encoder, self.decoder, self.z_dim = encoder, decoder, z_dim
        self.likelihood_std = likelihood_std

    def loss(self, x):
        """Negative ELBO per example, batch mean (nats)."""
        mu, log_sigma = self.encoder.distribution(x)
        z = mu + torch.exp(log_sigma) * torch.randn_like(mu)
        x_hat = self.decoder(z)
        s2 = self.likelihood_std**2
        nll = 0.5 * (x - x_hat).pow(2).sum(1) / s2 + 0.5 * x.shape[1] * math.log(2 * math.pi * s2)
        return (nll + gaussian_kl_standard(mu, log_sigma)).mean()

    def encode(self, x):
        return self.encoder(x)
