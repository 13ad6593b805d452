"""Representations for the L2-SVM protocol (Table 1), with every network in inference mode.

Feature sets (the choice is the config's ``svm.features``; reports name it and its dimension):
- ``released`` (default): what the released feature script (``scripts/preprocess_representations``)
  concatenates since commit 19e15ae (2016-05-25, "Fix oversight", the version it keeps to this day):
  the batch-normalised, pre-nonlinearity outputs of the encoder's last three hidden layers, and mu.
  For Table 4's encoder: 256x4x4 + 512 + 512 + 256 = 5,376. The paper's text says 8,960; no
  combination of the published layers gives that number.
- ``released_first``: the script's first commit (bc36004, 2016-05-24) read five hidden layers
  (rows 2-6) and mu (28,992 for SVHN); the fix a day later cut it to three.
- ``mu``: the posterior mean alone.
For models without an encoder:
- GAN, ``dcgan`` (our choice, after Radford et al.): the pre-nonlinearity outputs of D(x)'s last three
  layers, each max-pooled to at most 4x4, concatenated (SVHN: 128x4x4 + 256x4x4 + 512 = 6,656).
- raw pixels in [0, 1] (3,072 for 3x32x32): the floor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ali.data.batches import as_model_input

ENCODER_SETS = ("released", "released_first", "mu")
RENAMED_SETS = {"released_later": "released_first"}  # the five-layer set came first, not later


@torch.no_grad()
def encoder_features(model, x: torch.Tensor, feature_set: str = "released") -> torch.Tensor:
    """(B, d) features of an ALI or VAE encoder (a GaussianEncoder over a ConvEncoder)."""
    if feature_set in RENAMED_SETS:
        raise ValueError(f"feature set {feature_set!r} is now {RENAMED_SETS[feature_set]!r} (it is the released "
                         f"script's first version, bc36004); set svm.features: {RENAMED_SETS[feature_set]}")
    if feature_set not in ENCODER_SETS:
        raise ValueError(f"feature set must be one of {ENCODER_SETS}, got {feature_set!r}")
    pre = model.encoder.preactivations(x)
    mu = pre[-1].flatten(1)[:, : model.z_dim]  # the output row is linear: its output is (mu, log sigma)
    if feature_set == "mu":
        return mu
    hidden = pre[-4:-1] if feature_set == "released" else pre[1:-1]
    return torch.cat([h.flatten(1) for h in hidden] + [mu], dim=1)


@torch.no_grad()
def discriminator_features(model, x: torch.Tensor, n_layers: int = 3, pool: int = 4) -> torch.Tensor:
    """(B, d) DCGAN-style features of the GAN's D(x): last layers' pre-activations, max-pooled to <= 4x4."""
    pre = model.discriminator.dx.preactivations(x)[-n_layers:]
    pooled = [F.adaptive_max_pool2d(h, min(pool, h.shape[-1])) if h.shape[-1] > 1 else h for h in pre]
    return torch.cat([h.flatten(1) for h in pooled], dim=1)


@torch.no_grad()
def extract(source: str, model, images_uint8: torch.Tensor, feature_set: str = "released",
            batch_size: int = 500, device: str | torch.device = "cpu") -> torch.Tensor:
    """Features of every image (uint8 (N, C, H, W)) for ``source`` in {'ali', 'vae', 'gan', 'raw'}."""
    out = []
    for i in range(0, len(images_uint8), batch_size):
        x = as_model_input(images_uint8[i:i + batch_size].to(device))
        if source == "raw":
            f = x.flatten(1)
        elif source == "gan":
            f = discriminator_features(model, x)
        else:
            f = encoder_features(model, x, feature_set)
        out.append(f.float().cpu())
    return torch.cat(out)
