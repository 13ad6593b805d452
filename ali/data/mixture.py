"""The 25-mode Gaussian mixture of the paper's section 4.5.

25 equal-weight isotropic Gaussians centred on {-4, -2, 0, 2, 4}^2 with std 0.05. The training set
is drawn once from a seed and fixed; the held-out set is drawn from an independent stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

TRAIN_STREAM, HELDOUT_STREAM = 0, 1  # independent numpy streams spawned from one data seed
NO_MODE = -1  # assign()'s component for a non-finite sample: it lands in no mode


@dataclass(frozen=True)
class MixtureData:
    grid: tuple[float, ...] = (-4.0, -2.0, 0.0, 2.0, 4.0)
    std: float = 0.05
    n_train: int = 100_000
    n_heldout: int = 10_000
    seed: int = 1234

    def centres(self) -> np.ndarray:
        """(25, 2) component means, row-major over the grid (component k = (grid[k // 5], grid[k % 5]))."""
        g = np.asarray(self.grid, dtype=np.float64)
        xs, ys = np.meshgrid(g, g, indexing="ij")
        return np.stack([xs.ravel(), ys.ravel()], axis=1)

    @property
    def n_components(self) -> int:
        return len(self.grid) ** 2


def sample(spec: MixtureData, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` samples (n, 2) float32 and their component labels (n,) int64, components equally likely."""
    centres = spec.centres()
    labels = rng.integers(0, len(centres), size=n)
    x = centres[labels] + spec.std * rng.standard_normal((n, 2))
    return x.astype(np.float32), labels.astype(np.int64)


def _stream(spec: MixtureData, which: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(spec.seed).spawn(2)[which])


def train_set(spec: MixtureData) -> tuple[np.ndarray, np.ndarray]:
    """The fixed training set: ``spec.n_train`` samples drawn once from ``spec.seed``."""
    return sample(spec, spec.n_train, _stream(spec, TRAIN_STREAM))


def heldout_set(spec: MixtureData) -> tuple[np.ndarray, np.ndarray]:
    """The held-out set, from a stream independent of the training set's."""
    return sample(spec, spec.n_heldout, _stream(spec, HELDOUT_STREAM))


def assign(spec: MixtureData, x: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's most responsible component and its distance to that component's centre.

    With equal weights and one shared isotropic covariance the largest responsibility is the nearest
    centre, so this is exact and needs no exponentials (far samples would underflow them). A sample
    with a non-finite coordinate belongs to no component: ``NO_MODE`` at distance inf (an argmin over
    NaN distances would put it on component 0).
    """
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    x = x.astype(np.float64)
    finite = np.isfinite(x).all(axis=1)
    d2 = ((np.where(finite[:, None], x, 0.0)[:, None, :] - spec.centres()[None]) ** 2).sum(-1)  # (n, K)
    nearest = np.where(finite, d2.argmin(axis=1), NO_MODE)
    dist = np.where(finite, np.sqrt(d2[np.arange(len(x)), np.maximum(nearest, 0)]), np.inf)
    return nearest, dist
