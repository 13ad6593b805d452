"""VAE with the same encoder/decoder architecture as ALI's.

q(z|x) = N(mu, sigma^2) from the encoder's last layer. p(x|z) is our choice (REFERENCE.md), named by
``likelihood``: 'gaussian', N(G_x(z), likelihood_std^2 I) (the mixture), or 'bernoulli' on pixels in
[0, 1] with the decoder's sigmoid output as the mean (images).
"""

from __future__ import annotations

import math

import torch

from ali.models.base import SingleObjectiveModel, StepOptions, register
from ali.models.losses import gaussian_kl_standard
from ali.nets.stochastic import GaussianEncoder


@register
class VAE(SingleObjectiveModel):
    name = "vae"

    def __init__(self, encoder: GaussianEncoder, decoder: torch.nn.Module, z_dim: int,
                 likelihood_std: float | None = None, likelihood: str = "gaussian", options: StepOptions | None = None):
        super().__init__(options)
        if likelihood not in ("gaussian", "bernoulli"):
            raise ValueError(f"likelihood must be 'gaussian' or 'bernoulli', got {likelihood!r}")
        if likelihood == "gaussian" and not (likelihood_std and likelihood_std > 0):
            raise ValueError("a Gaussian likelihood needs likelihood_std > 0")
        self.encoder, self.decoder, self.z_dim = encoder, decoder, z_dim
        self.likelihood, self.likelihood_std = likelihood, likelihood_std

    noise_names = ("eps",)

    def noise_shapes(self, x, **inputs):
        return {"eps": (x.shape[0], self.z_dim)}

    def loss(self, x, eps=None):
        """Negative ELBO per example, batch mean (nats)."""
        mu, log_sigma = self.encoder.distribution(x)
        eps = torch.randn_like(mu) if eps is None else eps.to(mu.dtype)  # drawn after the encoder's pass, as before
        z = mu + torch.exp(log_sigma) * eps
        x_hat = self.decoder(z)
        return (self.nll(x, x_hat) + gaussian_kl_standard(mu, log_sigma)).mean()

    def nll(self, x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) per example, summed over every dimension of x."""
        if self.likelihood == "bernoulli":
            p, x = x_hat.float().clamp(1e-6, 1 - 1e-6), x.float()  # written out: BCE refuses autocast
            return -(x * torch.log(p) + (1 - x) * torch.log1p(-p)).flatten(1).sum(1)
        s2 = self.likelihood_std**2
        d = x[0].numel()
        return 0.5 * (x - x_hat).pow(2).flatten(1).sum(1) / s2 + 0.5 * d * math.log(2 * math.pi * s2)

    def encode(self, x):
        return self.encoder(x)
