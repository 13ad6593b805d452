"""ALI with a PacGAN-style packed discriminator: an example plug-in model for the mixture experiment.

PacGAN (Lin, Khetan, Fanti and Oh, NeurIPS 2018) lets the discriminator judge m samples at once,
concatenated into one input, which penalises a generator that collapses onto a few modes. Here the
samples are ALI's joint pairs: D sees ``PACK = 2`` pairs side by side, both from q(x, z) = q(x) q(z|x)
or both from p(x, z) = p(z) p(x|z). The rest is ALI's (``ali/models/ali.py``): the same encoder and
decoder, D's maxout layers on a twice wider input, the same game and update rule.

One difference from PacGAN, our choice for this example: PacGAN draws m times as many samples, so D
still sees B packed inputs; here the B pairs of ALI's batch become B/2 packed inputs, so the model
sees the same data batches, in the same order, as ALI run i.

Run it beside ALI and GAN on the smoke preset (from the repository root):

    snakemake --cores 2 --configfile config/smoke.yaml \
        --config 'mixture={extra_models: {packed_ali: "examples.packed_ali:PackedALI"}}' -- results/smoke/mixture.csv
"""

from __future__ import annotations

import torch

from ali.models.ali import ALI
from ali.models.base import StepOptions
from ali.models.losses import ali_game
from ali.nets import mlp
from ali.nets.stochastic import ImplicitEncoder

__version__ = "1"  # the runs' version: bump it when a change should retrain them

PACK = 2  # pairs per discriminator input (PacGAN's m)


def pack(pairs: torch.Tensor) -> torch.Tensor:
    """(B, d) -> (B / PACK, PACK * d): consecutive rows side by side."""
    b, d = pairs.shape
    if b % PACK:
        raise ValueError(f"packed_ali needs a batch size divisible by {PACK}, got {b}")
    return pairs.reshape(b // PACK, PACK * d)


class PackedALI(ALI):
    """ALI whose discriminator judges ``PACK`` joint pairs at once."""

    name = "packed_ali"

    @classmethod
    def from_mixture(cls, nets: mlp.MixtureNets, update: str, options: StepOptions) -> PackedALI:
        """The paper's mixture networks (``ali.nets.mlp``); D's input is PACK joint pairs wide."""
        disc = mlp.MaxoutDiscriminator(PACK * (nets.x_dim + nets.z_dim), nets.disc_hidden, nets.disc_layers,
                                       nets.maxout_pieces)
        return cls(encoder=ImplicitEncoder(mlp.encoder(nets), nets.noise_dim), decoder=mlp.decoder(nets),
                   discriminator=disc, z_dim=nets.z_dim, update=update, options=options)

    def losses(self, x, eps=None, z=None):
        noise = self.noise(x, {"eps": eps, "z": z})  # ALI's noise, drawn in ALI's order
        z_hat = self.encoder(x, noise["eps"])                     # (B, z): q(z | x)
        x_tilde = self.decoder(noise["z"])                        # (B, x): p(x | z)
        q = pack(torch.cat([x, z_hat], dim=1))                    # (B/2, 2 (x + z))
        p = pack(torch.cat([x_tilde, noise["z"]], dim=1))         # (B/2, 2 (x + z))
        logits = self.discriminator(torch.cat([q, p]))  # one call: the maxout D has no batch statistics
        return ali_game(logits[: len(q)], logits[len(q):])
