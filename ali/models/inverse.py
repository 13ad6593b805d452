"""GAN + learned inverse mapping: freeze the decoder, fit the encoder to E_z ||z - G_z(G_x(z))||^2."""

from __future__ import annotations

import torch
from torch import nn

from ali.models.base import FrozenDecoderMixin, SingleObjectiveModel, register


@register
class InverseMapping(FrozenDecoderMixin, SingleObjectiveModel):
    name = "inverse"

    def __init__(self, encoder: nn.Module, decoder: nn.Module, z_dim: int):
        super().__init__()
        self.encoder, self.decoder, self.z_dim = encoder, decoder, z_dim
        self.freeze_decoder()

    noise_names = ("z",)

    def noise_shapes(self, x, **inputs):
        return {"z": (x.shape[0], self.z_dim)}

    def loss(self, x, z=None):
        # x only sets the batch size and device: this objective never sees data.
        z = self.noise(x, {"z": z})["z"]
        with torch.no_grad():
            x_gen = self.decoder(z)
        return (z - self.encoder(x_gen)).pow(2).sum(dim=1).mean()

    def encode(self, x):
        return self.encoder(x)
