"""GAN baseline: the same decoder, a discriminator on x alone."""

from __future__ import annotations

import torch
from torch import nn

from ali.models.base import AdversarialModel, StepOptions, register
from ali.models.losses import discriminator_loss, gan_generator_loss


@register
class GAN(AdversarialModel):
    name = "gan"
    has_encoder = False

    def __init__(self, decoder: nn.Module, discriminator: nn.Module, z_dim: int, update: str = "simultaneous",
                 options: StepOptions | None = None):
        super().__init__(update, options)
        self.decoder, self.discriminator, self.z_dim = decoder, discriminator, z_dim

    def g_parameters(self):
        return list(self.decoder.parameters())

    def losses(self, x):
        x_fake = self.decoder(torch.randn(x.shape[0], self.z_dim, device=x.device))
        logits = self.discriminator(torch.cat([x, x_fake]))  # one call; D has no batch statistics
        logit_real, logit_fake = logits[: len(x)], logits[len(x):]
        return discriminator_loss(logit_real, logit_fake), gan_generator_loss(logit_fake)
