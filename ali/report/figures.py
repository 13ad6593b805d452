"""Figure 8 of the paper: the mixture experiment's inference models side by side (and plug-in models after them)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ali.data.mixture import MixtureData, assign, heldout_set  # noqa: E402
from ali.train.files import atomic_write  # noqa: E402

ROWS = ("data x ~ q(x)", "latent codes z ~ q(z|x)", "reconstructions", "prior z ~ p(z)", "samples x ~ p(x|z)")
COLUMNS = {"ali": "(a) ALI", "inverse": "(b) GAN + inverse mapping", "posthoc": "(c) GAN + post-hoc inference",
           "vae": "(d) VAE"}


def component_colours(n: int) -> np.ndarray:
    """n distinct colours; neighbouring components of the grid get far-apart hues."""
    order = (np.arange(n) * 7) % n
    return plt.cm.hsv(order / n)[:, :3]


def figure8_columns(extra: list[str]) -> dict[str, str]:
    """The paper's four columns, then one per plug-in model (its best run), lettered on."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    return COLUMNS | {name: f"({letters[len(COLUMNS) + i]}) {name} (plug-in)" for i, name in enumerate(extra)}


@torch.no_grad()
def figure8(models: dict, spec: MixtureData, out: Path, title: str, n_points: int = 2500, seed: int = 0,
            extra_columns: list[str] = ()) -> None:
    """``models``: column key -> (model in eval mode, or None with a reason string); ``extra_columns``:
    plug-in models' keys, drawn after the paper's columns (a model without an encoder leaves rows 2-3 blank)."""
    columns = figure8_columns(list(extra_columns))
    colours = component_colours(spec.n_components)
    x_np, labels = heldout_set(spec)
    x = torch.from_numpy(x_np[:n_points])
    labels = labels[:n_points]
    fig, axes = plt.subplots(len(ROWS), len(columns), figsize=(3.0 * len(columns), 3.0 * len(ROWS)),
                             squeeze=False)
    lim_x = max(abs(g) for g in spec.grid) + 2.0
    for j, (key, label) in enumerate(columns.items()):
        model, reason = models.get(key, (None, "not run"))
        axes[0, j].set_title(label, fontsize=10)
        if model is None:
            for i in range(len(ROWS)):
                axes[i, j].text(0.5, 0.5, reason, ha="center", va="center", transform=axes[i, j].transAxes)
                axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
            continue
        torch.manual_seed(seed)
        z_q = model.encode(x) if model.has_encoder else None
        x_rec = model.decode(z_q) if model.has_encoder else None
        z_p = model.prior(n_points)
        x_p = model.decode(z_p)
        gen_comp, _ = assign(spec, x_p)
        panels = [(x, labels, lim_x), (z_q, labels, 4.0), (x_rec, labels, lim_x), (z_p, gen_comp, 4.0),
                  (x_p, gen_comp, lim_x)]
        for i, (pts, comp, lim) in enumerate(panels):
            ax = axes[i, j]
            if pts is None:
                ax.text(0.5, 0.5, "no encoder", ha="center", va="center", transform=ax.transAxes)
                ax.set_xticks([]), ax.set_yticks([])
                continue
            pts = pts.numpy()
            ax.scatter(pts[:, 0], pts[:, 1], s=2, c=colours[comp], linewidths=0)
            ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=6)
    for i, row in enumerate(ROWS):
        axes[i, 0].set_ylabel(row, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, lambda f: fig.savefig(f, format=out.suffix.lstrip(".") or "png", dpi=110))
    plt.close(fig)
