"""The adversarial losses on discriminator logits (paper eq. 4, the released code's form).

With D's output a logit l and sigmoid(l) = P(pair came from the encoder / data side):
    L_D = softplus(-l_q) + softplus(l_p)              (= -log D(x, z_hat) - log(1 - D(x_tilde, z)))
    L_G = softplus(l_q) + softplus(-l_p)              (swapped labels: the non-saturating form)
each averaged over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss(logit_real: torch.Tensor, logit_fake: torch.Tensor) -> torch.Tensor:
    """L_D: label the encoder/data side 1 and the decoder/generator side 0."""
    return F.softplus(-logit_real).mean() + F.softplus(logit_fake).mean()


def ali_generator_loss(logit_q: torch.Tensor, logit_p: torch.Tensor) -> torch.Tensor:
    """L_G for ALI's two generators: the same pairs with the labels swapped."""
    return F.softplus(logit_q).mean() + F.softplus(-logit_p).mean()


def gan_generator_loss(logit_fake: torch.Tensor) -> torch.Tensor:
    """L_G for a GAN generator: the non-saturating -log D(G(z))."""
    return F.softplus(-logit_fake).mean()


def gaussian_kl_standard(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per example, summed over latent dimensions: (B,)."""
    return 0.5 * (mu.pow(2) + torch.exp(2 * log_sigma) - 1.0 - 2 * log_sigma).sum(-1)
