"""Inference metrics: Gaussian-fit KL, MMD, and reconstructions."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from ali.data.mixture import MixtureData, heldout_set
from ali.eval.inference import gaussian_kl_to_standard, inference_metrics, mmd2_rbf


def test_gaussian_kl_of_standard_sample_is_near_zero():
    """A large N(0, I) sample fits N(0, I): KL ~ d/n-sized, far below 0.01."""
    z = np.random.default_rng(0).standard_normal((50_000, 2))
    kl = gaussian_kl_to_standard(z)
    assert 0.0 <= kl < 2e-3


def test_gaussian_kl_hand_sample():
    """Four points with sample mean (1, 0) and sample covariance diag(2, 0.5) (n-1 normalised).

    KL = 0.5 * (tr S + |mu|^2 - d - log det S) = 0.5 * (2.5 + 1 - 2 - log 1) = 0.75.
    """
    a, b = math.sqrt(3.0), math.sqrt(0.75)  # var_x = 2 a^2 / 3 = 2, var_y = 2 b^2 / 3 = 0.5
    z = np.array([[1 + a, 0.0], [1 - a, 0.0], [1.0, b], [1.0, -b]])
    assert gaussian_kl_to_standard(z) == pytest.approx(0.75, rel=1e-12)


def test_gaussian_kl_correlated_sample_matches_closed_form():
    """A shifted, scaled, correlated sample: KL equals the closed form on its own moments,
    and is close to the population value."""
    rng = np.random.default_rng(1)
    mu = np.array([1.0, -2.0])
    cov = np.array([[4.0, 0.6], [0.6, 0.25]])
    z = rng.multivariate_normal(mu, cov, size=40_000)
    m, s = z.mean(0), np.cov(z.T)
    by_hand = 0.5 * (np.trace(s) + m @ m - 2 - np.log(np.linalg.det(s)))
    assert gaussian_kl_to_standard(z) == pytest.approx(by_hand, rel=1e-10)
    population = 0.5 * (np.trace(cov) + mu @ mu - 2 - np.log(np.linalg.det(cov)))
    assert gaussian_kl_to_standard(z) == pytest.approx(population, abs=0.05)


def test_gaussian_kl_collapsed_sample_is_inf():
    """A degenerate q(z) (all codes on a line) has infinite KL, not a finite number."""
    t = np.linspace(-1, 1, 100)
    assert gaussian_kl_to_standard(np.stack([t, 2 * t], 1)) == float("inf")


def test_mmd_same_distribution_is_near_zero():
    """Unbiased MMD^2 of two N(0, I) samples of 500 is ~0 (null sd ~0.002)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g)
    assert abs(mmd2_rbf(a, b)) < 0.015


def test_mmd_shifted_distribution_is_positive():
    """A unit shift gives MMD^2 ~0.2, far above the null's spread."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g) + torch.tensor([1.0, 0.0])
    assert mmd2_rbf(a, b) > 0.1


def test_mmd_identical_points_hand_value():
    """Two samples each of two points: closed-form unbiased MMD^2 with one bandwidth."""
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 3.0], [1.0, 3.0]])
    k = lambda d2: math.exp(-d2 / 2)  # noqa: E731  bandwidth 1
    term_a = k(1.0)  # off-diagonal pair, divided by n(n-1) = 2, counted twice
    term_b = k(1.0)
    cross = (k(9.0) + k(10.0) + k(10.0) + k(9.0)) / 4
    assert mmd2_rbf(a, b, bandwidths=(1.0,)) == pytest.approx(term_a + term_b - 2 * cross, rel=1e-12)


class _PerfectAutoencoder:
    """encode halves x, decode doubles it back: an exact inverse pair."""

    def encode(self, x):
        return x / 2

    def decode(self, z):
        return z * 2


class _CollapsedDecoder(_PerfectAutoencoder):
    """Every reconstruction lands on the centre (0, 0)."""

    def decode(self, z):
        return torch.zeros_like(z)


SPEC = dataclasses.replace(MixtureData(), n_heldout=2000)


def test_inference_metrics_perfect_autoencoder():
    """An exact inverse reconstructs every held-out point: error 0, same mode 100 %, 25 modes."""
    x, labels = heldout_set(SPEC)
    m = inference_metrics(SPEC, _PerfectAutoencoder(), torch.from_numpy(x), labels, mmd_samples=300)
    assert m["recon_sqerr"] == pytest.approx(0.0, abs=1e-10)
    assert m["recon_same_mode_pct"] == 100.0
    assert m["recon_modes"] == 25
    # q(z) = x / 2 is a 5x5 grid with coordinate variance 2: finite KL, clearly not N(0, I).
    assert math.isfinite(m["qz_gauss_kl"]) and m["qz_gauss_kl"] > 0.1
    assert set(m) == {"recon_sqerr", "recon_same_mode_pct", "recon_modes", "qz_gauss_kl", "qz_mmd"}


def test_inference_metrics_collapsed_decoder():
    """Reconstructions all at (0, 0): 1 mode, ~4 % same mode, error = mean ||x||^2."""
    x, labels = heldout_set(SPEC)
    m = inference_metrics(SPEC, _CollapsedDecoder(), torch.from_numpy(x), labels, mmd_samples=300)
    assert m["recon_modes"] == 1
    assert m["recon_same_mode_pct"] == pytest.approx(100.0 * np.mean(labels == 12))
    assert m["recon_sqerr"] == pytest.approx(float((x.astype(np.float64) ** 2).sum(1).mean()), rel=1e-5)
