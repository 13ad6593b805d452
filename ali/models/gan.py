"""GAN baseline: the same decoder, a discriminator on x alone."""

from __future__ import annotations

import torch
from torch import nn

from ali.models.base import AdversarialModel, StepOptions, register
from ali.models.losses import gan_game


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

    noise_names = ("z",)

    def noise_shapes(self, x, **inputs):
        return {"z": (x.shape[0], self.z_dim)}

    def losses(self, x, z=None):
        x_fake = self.decoder(self.noise(x, {"z": z})["z"])
        logits = self.discriminator(torch.cat([x, x_fake]))  # one call; D has no batch statistics
        return gan_game(logits[: len(x)], logits[len(x):])
