"""GAN + post-hoc learned inference: a frozen GAN decoder, a new encoder and joint D, the ALI game."""

from __future__ import annotations

import torch
from torch import nn

from ali.models.ali import joint_logits
from ali.models.base import AdversarialModel, FrozenDecoderMixin, register
from ali.models.losses import ali_game


@register
class PosthocALI(FrozenDecoderMixin, AdversarialModel):
    name = "posthoc"

    def __init__(self, encoder: nn.Module, decoder: nn.Module, discriminator: nn.Module, z_dim: int,
                 update: str = "simultaneous"):
        super().__init__(update)
        self.encoder, self.decoder, self.discriminator, self.z_dim = encoder, decoder, discriminator, z_dim
        self.freeze_decoder()

    def g_parameters(self):
        return list(self.encoder.parameters())  # only the encoder learns; the decoder is the GAN's

    noise_names = ("eps", "z")

    def noise_shapes(self, x, **inputs):
        b = x.shape[0]
        return {"eps": (b, self.encoder.noise_columns(self.z_dim)), "z": (b, self.z_dim)}

    def losses(self, x, eps=None, z=None):
        noise = self.noise(x, {"eps": eps, "z": z})
        z_hat = self.encoder(x, noise["eps"])
        z = noise["z"]
        with torch.no_grad():
            x_tilde = self.decoder(z)
        return ali_game(*joint_logits(self.discriminator, x, z_hat, x_tilde, z))

    def encode(self, x):
        return self.encoder(x)
