"""Mode coverage of samples from p(x) on the 25-mode mixture.

Two definitions:
- the paper's: 10,000 samples, each assigned to its most responsible component; a mode is
  dropped when no sample is assigned to it;
- the stricter one of VEEGAN / PacGAN: 2,500 samples; a sample is high quality when it lies within
  3 std of its nearest centre; a mode is captured when at least one high-quality sample is assigned
  to it; reverse KL between the high-quality samples' histogram over modes and the uniform one.
A sample with a NaN or infinite coordinate lands in no mode and is never high quality under either
definition; ``nonfinite_pct`` reports how many there were.
"""

from __future__ import annotations

import numpy as np

from ali.data.mixture import MixtureData, assign


def mode_histogram(spec: MixtureData, x, hq_stds: float | None = None) -> np.ndarray:
    """(25,) counts of samples per nearest component; with ``hq_stds``, high-quality samples only."""
    nearest, dist = assign(spec, x)
    keep = _counted(nearest, dist, None if hq_stds is None else hq_stds * spec.std)
    return np.bincount(nearest[keep], minlength=spec.n_components)


def _counted(nearest: np.ndarray, dist: np.ndarray, radius: float | None) -> np.ndarray:
    """(n,) bool: the samples that land in a mode (finite ones; within ``radius`` of it when given)."""
    keep = nearest >= 0  # a non-finite sample is NO_MODE
    return keep if radius is None else keep & (dist <= radius)


def paper_modes(spec: MixtureData, x) -> int:
    """Number of components that at least one sample is assigned to (the paper's count)."""
    return int((mode_histogram(spec, x) > 0).sum())


def nonfinite_pct(x) -> float:
    """% of samples with a NaN or infinite coordinate (they count for no mode)."""
    x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
    return 100.0 * float((~np.isfinite(x).all(axis=1)).mean())


def reverse_kl_to_uniform(hist: np.ndarray) -> float:
    """KL(p || uniform) for the normalised histogram p; NaN when the histogram is empty."""
    total = hist.sum()
    if total == 0:
        return float("nan")
    p = hist[hist > 0] / total
    return float((p * np.log(p * len(hist))).sum())


def strict_metrics(spec: MixtureData, x, hq_stds: float = 3.0) -> dict[str, float]:
    """Modes captured, % high-quality samples and reverse KL (PacGAN's table columns)."""
    nearest, dist = assign(spec, x)
    hq = _counted(nearest, dist, hq_stds * spec.std)  # a non-finite sample is never high quality
    hist = np.bincount(nearest[hq], minlength=spec.n_components)
    return {
        "strict_modes": int((hist > 0).sum()),
        "hq_pct": 100.0 * float(hq.mean()),
        "reverse_kl": reverse_kl_to_uniform(hist),
    }
