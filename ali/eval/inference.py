"""How well an encoder inverts its decoder and matches the prior (numbers the paper does not give).

On held-out data x with known components: reconstruction x_rec = G_x(z), z ~ q(z | x);
- ``recon_sqerr``: mean over samples of ||x - x_rec||^2;
- ``recon_same_mode_pct``: % of reconstructions whose nearest component is the input's own;
- ``recon_modes``: the paper's mode count applied to the reconstructions;
- ``qz_gauss_kl``: KL(N(mean, cov of q(z)) || N(0, I)), a moment-matched Gaussian fit;
- ``qz_mmd``: unbiased MMD^2 between q(z) and p(z) samples, RBF kernels at several bandwidths.
"""

from __future__ import annotations

import numpy as np
import torch

from ali.data.mixture import MixtureData, assign
from ali.eval.coverage import paper_modes

MMD_BANDWIDTHS = (0.1, 0.3, 1.0, 3.0)


def gaussian_kl_to_standard(z: np.ndarray) -> float:
    """KL(N(mu, Sigma) || N(0, I)) for the sample mean and covariance of z (n, d)."""
    z = np.asarray(z, dtype=np.float64)
    d = z.shape[1]
    mu, cov = z.mean(0), np.atleast_2d(np.cov(z, rowvar=False))
    sign, logdet = np.linalg.slogdet(cov)
    if sign <= 0:
        return float("inf")
    return float(0.5 * (np.trace(cov) + mu @ mu - d - logdet))


def mmd2_rbf(a: torch.Tensor, b: torch.Tensor, bandwidths=MMD_BANDWIDTHS) -> float:
    """Unbiased MMD^2 with a sum of RBF kernels exp(-||u - v||^2 / (2 h^2))."""
    a, b = a.double(), b.double()

    def k(u, v):
        d2 = torch.cdist(u, v).pow(2)
        return sum(torch.exp(-d2 / (2 * h * h)) for h in bandwidths)

    n, m = len(a), len(b)
    kaa, kbb, kab = k(a, a), k(b, b), k(a, b)
    term_a = (kaa.sum() - kaa.diagonal().sum()) / (n * (n - 1))
    term_b = (kbb.sum() - kbb.diagonal().sum()) / (m * (m - 1))
    return float(term_a + term_b - 2 * kab.mean())


@torch.no_grad()
def inference_metrics(spec: MixtureData, model, x: torch.Tensor, labels: np.ndarray,
                      mmd_samples: int = 2000, seed: int = 0) -> dict[str, float]:
    """The metrics of a model's encoder and decoder on ``x``: z = encode(x), x_rec = decode(z)."""
    z = model.encode(x)
    return code_metrics(spec, x, labels, z, model.decode(z), mmd_samples=mmd_samples, seed=seed)


@torch.no_grad()
def code_metrics(spec: MixtureData, x: torch.Tensor, labels: np.ndarray, z: torch.Tensor, x_rec: torch.Tensor,
                 mmd_samples: int = 2000, seed: int = 0) -> dict[str, float]:
    """The same metrics from codes z (n, d) and reconstructions x_rec (n, 2) already computed.

    The p(z) sample q(z) is compared with is drawn from its own generator seeded by ``seed``, so the
    number depends only on the codes, never on what drew from torch's global stream before.
    """
    nearest, _ = assign(spec, x_rec)
    m = min(mmd_samples, len(z))
    prior = torch.randn(m, z.shape[1], generator=torch.Generator().manual_seed(seed))
    return {
        "recon_sqerr": float((x - x_rec).pow(2).sum(1).mean()),
        "recon_same_mode_pct": 100.0 * float((nearest == labels).mean()),
        "recon_modes": paper_modes(spec, x_rec),
        "qz_gauss_kl": gaussian_kl_to_standard(z.cpu().numpy()),
        "qz_mmd": mmd2_rbf(z[:m].cpu(), prior),
    }
