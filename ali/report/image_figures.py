"""Image figures as in the paper: samples (Figures 2-5, left), reconstructions with odd columns data
and even columns their reconstructions (Figures 2-5, right), latent interpolations (Figure 6).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import save_image

from ali.train.files import atomic_write


@torch.no_grad()
def samples_grid(model, n: int, out: Path, nrow: int = 10) -> None:
    x = model.decode(model.prior(n))
    _save(x, out, nrow)


@torch.no_grad()
def reconstructions_grid(model, x: torch.Tensor, out: Path, nrow: int = 10) -> None:
    """Pairs (data, reconstruction) side by side: odd columns data, even columns reconstructions."""
    x_rec = model.decode(model.encode(x))
    pairs = torch.stack([x, x_rec], dim=1).flatten(0, 1)  # (2n, C, H, W): x0, r0, x1, r1, ...
    _save(pairs, out, nrow)


@torch.no_grad()
def interpolation_grid(model, x_a: torch.Tensor, x_b: torch.Tensor, steps: int, out: Path) -> None:
    """Each row: x_a, decodes of (1 - t) z_a + t z_b for t in [0, 1], x_b (z from the encoder)."""
    z_a, z_b = model.encode(x_a), model.encode(x_b)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    z = (1 - t) * z_a[:, None] + t * z_b[:, None]  # (pairs, steps, z)
    x = model.decode(z.flatten(0, 1)).view(len(x_a), steps, *x_a.shape[1:])
    rows = torch.cat([x_a[:, None], x, x_b[:, None]], dim=1).flatten(0, 1)
    _save(rows, out, steps + 2)


def _save(x: torch.Tensor, out: Path, nrow: int) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    grid = x.float().clamp(0, 1)
    atomic_write(Path(out), lambda f: save_image(grid, f, format="png", nrow=nrow, padding=1, pad_value=1.0))
