"""Every metric of one mixture run, from what the run produced: the one function that measures our
runs (``ali evaluate``) and anyone's samples (``ali score mixture``), so the two cannot drift apart.

What is measured (``settings`` is ``mixture.eval`` of a preset):
- ``x_paper``, ``n_samples`` generator samples: the paper's mode count and the non-finite %;
- ``x_strict``, ``n_strict_samples`` further samples: the strict modes, % high quality (within
  ``hq_stds`` std of the nearest centre) and the reverse KL of VEEGAN / PacGAN;
- optionally codes z = encode(x) and reconstructions decode(z) of inputs x with known components:
  the inference metrics of ``ali.eval.inference`` (the p(z) sample drawn from ``settings["seed"]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from ali.data.mixture import MixtureData
from ali.eval.coverage import nonfinite_pct, paper_modes, strict_metrics
from ali.eval.inference import code_metrics

# Bump when a definition below (or in coverage / inference) changes what a number means, so a row
# scored under one version is never read beside rows measured under another.
MIXTURE_METRICS_VERSION = "mixture-metrics/2 (qz_mmd's p(z) sample from mixture.eval.seed)"


@dataclass(frozen=True)
class Codes:
    """Inputs x (n, 2) with their components (n,), codes z = encode(x) (n, d) and decode(z) (n, 2)."""

    inputs: torch.Tensor
    labels: np.ndarray
    latents: torch.Tensor
    reconstructions: torch.Tensor


@dataclass(frozen=True)
class MixtureOutputs:
    """What a model produced for its evaluation: two independent sample batches and optional codes."""

    x_paper: torch.Tensor  # (n_samples, 2)
    x_strict: torch.Tensor  # (n_strict_samples, 2)
    codes: Codes | None = None


def mixture_metrics(data: MixtureData, outputs: MixtureOutputs, settings: Mapping) -> dict:
    """The metrics of one run's outputs; ``status`` is ``nonfinite_samples`` when a paper-count sample is
    NaN or infinite (it then counts for no mode), else ``ok``."""
    metrics: dict = {"modes": paper_modes(data, outputs.x_paper), "nonfinite_pct": nonfinite_pct(outputs.x_paper)}
    metrics.update(strict_metrics(data, outputs.x_strict, settings["hq_stds"]))
    if outputs.codes is not None:
        c = outputs.codes
        metrics.update(code_metrics(data, c.inputs, c.labels, c.latents, c.reconstructions,
                                    mmd_samples=settings["mmd_samples"], seed=settings["seed"]))
    metrics["status"] = "ok" if metrics["nonfinite_pct"] == 0 else "nonfinite_samples"
    return metrics
