"""ALI: encoder G_z, decoder G_x and a discriminator on joint pairs (paper section 2)."""

from __future__ import annotations

import torch
from torch import nn

from ali.models.base import AdversarialModel, StepOptions, register
from ali.models.losses import ali_game


def joint_logits(discriminator: nn.Module, x, z_hat, x_tilde, z) -> tuple[torch.Tensor, torch.Tensor]:
    """D on the q-pairs (x, z_hat) and p-pairs (x_tilde, z) in one call.

    Batching both sides is exact only for a discriminator without batch statistics; the builders
    that use it (the mixture's maxout D) have none.
    """
    logits = discriminator(torch.cat([x, x_tilde]), torch.cat([z_hat, z]))
    return logits[: len(x)], logits[len(x):]


@register
class ALI(AdversarialModel):
    name = "ali"

    def __init__(self, encoder: nn.Module, decoder: nn.Module, discriminator: nn.Module, z_dim: int,
                 update: str = "simultaneous", options: StepOptions | None = None):
        super().__init__(update, options)
        self.encoder, self.decoder, self.discriminator, self.z_dim = encoder, decoder, discriminator, z_dim

    def g_parameters(self):
        return list(self.encoder.parameters()) + list(self.decoder.parameters())

    noise_names = ("eps", "z")

    def noise_shapes(self, x, **inputs):
        """The encoder's eps, then the prior's z: the order in which the pass uses them."""
        b = x.shape[0]
        return {"eps": (b, self.encoder.noise_columns(self.z_dim)), "z": (b, self.z_dim)}

    def losses(self, x, eps=None, z=None):
        noise = self.noise(x, {"eps": eps, "z": z})  # what is not given is drawn here, in order
        z_hat = self.encoder(x, noise["eps"])                     # (B, z): q(z | x)
        z = noise["z"]                                            # (B, z): p(z)
        x_tilde = self.decoder(z)                                 # (B, x): p(x | z)
        return ali_game(*joint_logits(self.discriminator, x, z_hat, x_tilde, z))

    def encode(self, x):
        return self.encoder(x)
