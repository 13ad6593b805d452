"""GAN + post-hoc learned inference: a frozen GAN decoder, a new encoder and joint D, the ALI game."""

from __future__ import annotations

import torch
from torch import nn

from ali.models.ali import joint_logits
from ali.models.base import AdversarialModel, FrozenDecoderMixin, register
from ali.models.losses import ali_generator_loss, discriminator_loss


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

    def losses(self, x):
        z_hat = self.encoder(x)
        z = torch.randn(x.shape[0], self.z_dim, device=x.device)
        with torch.no_grad():
            x_tilde = self.decoder(z)
        logit_q, logit_p = joint_logits(self.discriminator, x, z_hat, x_tilde, z)
        return discriminator_loss(logit_q, logit_p), ali_generator_loss(logit_q, logit_p)

    def encode(self, x):
        return self.encoder(x)
