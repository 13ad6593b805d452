"""Adversarial losses on logits and the Gaussian KL, against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from ali.models.losses import ali_generator_loss, discriminator_loss, gan_generator_loss, gaussian_kl_standard

LOG2 = math.log(2.0)


def neg_log_sigmoid(l: float) -> float:
    """-log(sigmoid(l)), written out with math (fine for moderate |l|)."""
    return -math.log(1.0 / (1.0 + math.exp(-l)))


def t(*v):
    return torch.tensor(v, dtype=torch.float64)


def test_zero_logits():
    """D undecided (logit 0): L_D = L_G = 2 log 2; the GAN generator loss is log 2."""
    z = torch.zeros(5)
    assert discriminator_loss(z, z).item() == pytest.approx(2 * LOG2)
    assert ali_generator_loss(z, z).item() == pytest.approx(2 * LOG2)
    assert gan_generator_loss(z).item() == pytest.approx(LOG2)


def test_discriminator_loss_matches_log_sigmoid_form():
    """L_D = mean(-log D(real)) + mean(-log(1 - D(fake))) with D = sigmoid(logit)."""
    real, fake = [0.3, -1.2, 2.5], [1.0, -0.4]
    expected = (sum(neg_log_sigmoid(l) for l in real) / 3
                + sum(neg_log_sigmoid(-l) for l in fake) / 2)  # 1 - sigmoid(l) = sigmoid(-l)
    assert discriminator_loss(t(*real), t(*fake)).item() == pytest.approx(expected, rel=1e-12)


def test_ali_generator_loss_matches_swapped_labels_form():
    """L_G = mean(-log(1 - D(x, z_hat))) + mean(-log D(x_tilde, z)): labels swapped."""
    q, p = [0.3, -1.2, 2.5], [1.0, -0.4]
    expected = sum(neg_log_sigmoid(-l) for l in q) / 3 + sum(neg_log_sigmoid(l) for l in p) / 2
    assert ali_generator_loss(t(*q), t(*p)).item() == pytest.approx(expected, rel=1e-12)


def test_generator_loss_is_discriminator_loss_with_arguments_swapped():
    """L_G(q, p) == L_D(p, q) for any logits (the non-saturating swap, not -L_D)."""
    g = torch.Generator().manual_seed(0)
    q, p = 3 * torch.randn(64, generator=g), 3 * torch.randn(64, generator=g)
    torch.testing.assert_close(ali_generator_loss(q, p), discriminator_loss(p, q))
    assert not torch.allclose(ali_generator_loss(q, p), -discriminator_loss(q, p))


def test_gan_generator_loss_is_non_saturating():
    """-log D(G(z)) = mean(-log sigmoid(l)), large when D rejects the fakes."""
    fake = [-3.0, 0.5]
    expected = (neg_log_sigmoid(-3.0) + neg_log_sigmoid(0.5)) / 2
    assert gan_generator_loss(t(*fake)).item() == pytest.approx(expected, rel=1e-12)
    assert gan_generator_loss(t(-30.0)).item() == pytest.approx(30.0, rel=1e-6)


def test_extreme_logits_are_finite_and_exact():
    """Confident D: L_D ~ 0 when right and ~|l| when wrong, with no inf/NaN at |l| = 1000."""
    big = torch.full((4,), 1000.0)
    assert discriminator_loss(big, -big).item() == pytest.approx(0.0, abs=1e-12)
    assert discriminator_loss(-big, big).item() == pytest.approx(2000.0)
    assert ali_generator_loss(big, -big).item() == pytest.approx(2000.0)
    assert ali_generator_loss(-big, big).item() == pytest.approx(0.0, abs=1e-12)
    assert gan_generator_loss(-big).item() == pytest.approx(1000.0)
    assert discriminator_loss(t(20.0), t(-20.0)).item() == pytest.approx(2 * math.log1p(math.exp(-20)), rel=1e-9)


def test_losses_are_batch_means():
    """Doubling the batch with copies leaves the losses unchanged (mean, not sum)."""
    a, b = t(0.7, -0.2), t(1.5, 0.1, -2.0)
    assert discriminator_loss(a, b).item() == pytest.approx(discriminator_loss(a.repeat(2), b.repeat(3)).item())
    assert gan_generator_loss(b).item() == pytest.approx(gan_generator_loss(b.repeat(4)).item())


def test_gaussian_kl_standard_zero_at_prior():
    """KL(N(0, 1) || N(0, 1)) = 0 per example; output is (B,)."""
    out = gaussian_kl_standard(torch.zeros(3, 2), torch.zeros(3, 2))
    assert out.shape == (3,)
    torch.testing.assert_close(out, torch.zeros(3))


def test_gaussian_kl_standard_by_hand():
    """mu = (1, 2), sigma = (2, 1): 0.5 (1 + 4 - 1 - 2 log 2) + 0.5 (4 + 1 - 1 - 0) = 3.3069."""
    mu = t(1.0, 2.0)[None]
    log_sigma = t(math.log(2.0), 0.0)[None]
    expected = 0.5 * (1 + 4 - 1 - 2 * math.log(2)) + 0.5 * (4 + 1 - 1)
    assert gaussian_kl_standard(mu, log_sigma).item() == pytest.approx(expected, rel=1e-12)


def test_gaussian_kl_standard_matches_torch_distributions():
    """Agrees with torch.distributions' KL summed over dimensions."""
    g = torch.Generator().manual_seed(1)
    mu, log_sigma = torch.randn(6, 3, generator=g), 0.5 * torch.randn(6, 3, generator=g)
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, log_sigma.exp()), torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(gaussian_kl_standard(mu, log_sigma), ref)
