"""The adversarial losses on discriminator logits (paper eq. 4, the released code's form).

With D's output a logit l and sigmoid(l) = P(pair came from the encoder / data side):
    L_D = softplus(-l_q) + softplus(l_p)              (= -log D(x, z_hat) - log(1 - D(x_tilde, z)))
    L_G = softplus(l_q) + softplus(-l_p)              (swapped labels: the non-saturating form)
each averaged over the batch (the last dimension, so that the engine's (R, B) logits give R losses).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Softplus = Callable[[torch.Tensor], torch.Tensor]


def discriminator_loss(logit_real: torch.Tensor, logit_fake: torch.Tensor, softplus: Softplus = F.softplus
                       ) -> torch.Tensor:
    """L_D: label the encoder/data side 1 and the decoder/generator side 0. Logits (..., B) -> (...)."""
    return softplus(-logit_real).mean(-1) + softplus(logit_fake).mean(-1)


def ali_generator_loss(logit_q: torch.Tensor, logit_p: torch.Tensor, softplus: Softplus = F.softplus
                       ) -> torch.Tensor:
    """L_G for ALI's two generators: the same pairs with the labels swapped."""
    return softplus(logit_q).mean(-1) + softplus(-logit_p).mean(-1)


def gan_generator_loss(logit_fake: torch.Tensor, softplus: Softplus = F.softplus) -> torch.Tensor:
    """L_G for a GAN generator: the non-saturating -log D(G(z))."""
    return softplus(-logit_fake).mean(-1)


def ali_game(logit_q: torch.Tensor, logit_p: torch.Tensor, softplus: Softplus = F.softplus
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_D, L_G) of ALI (and post-hoc inference) from D's logits on the q-pairs and the p-pairs.

    The solo models and the run-batched engine (``ali.engine.batched``, logits (R, B), a lane-aligned
    softplus) both call this: one statement of the game.
    """
    return discriminator_loss(logit_q, logit_p, softplus), ali_generator_loss(logit_q, logit_p, softplus)


def gan_game(logit_real: torch.Tensor, logit_fake: torch.Tensor, softplus: Softplus = F.softplus
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(L_D, L_G) of the GAN from D's logits on data and on generated samples."""
    return discriminator_loss(logit_real, logit_fake, softplus), gan_generator_loss(logit_fake, softplus)


GAMES = {"ali": ali_game, "gan": gan_game}  # by model name


def gaussian_kl_standard(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per example, summed over latent dimensions: (B,)."""
    return 0.5 * (mu.pow(2) + torch.exp(2 * log_sigma) - 1.0 - 2 * log_sigma).sum(-1)
