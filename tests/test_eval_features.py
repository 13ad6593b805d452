"""Representations for the L2-SVM protocol (ali.eval.features) on the SVHN architecture (Table 4).

Encoder (ALI, VAE), row by row on a 3x32x32 input (no padding), the pre-activation output of each row:

    row 1  conv 5x5 s1   32 -> 32 x 28 x 28, BN
    row 2  conv 4x4 s2   64 -> 64 x 13 x 13, BN
    row 3  conv 4x4 s1  128 -> 128 x 10 x 10, BN
    row 4  conv 4x4 s2  256 -> 256 x 4 x 4, BN     <- 'released'
    row 5  conv 4x4 s1  512 -> 512 x 1 x 1, BN     <- 'released'
    row 6  conv 1x1 s1  512 -> 512 x 1 x 1, BN     <- 'released'
    row 7  conv 1x1 s1  512 -> (mu, log sigma), linear: mu = the first 256

'released' = rows 4-6 (BN outputs, before the LeakyReLU) + mu = 4,096 + 512 + 512 + 256 = 5,376;
'released_first' = rows 2-6 + mu = 10,816 + 12,800 + 4,096 + 512 + 512 + 256 = 28,992.
GAN D(x) rows 3-5 (BN outputs: 128 x 10 x 10, 256 x 4 x 4, 512 x 1 x 1), max-pooled to at most 4x4:
2,048 + 4,096 + 512 = 6,656. Raw pixels: 3 x 32 x 32 = 3,072.

Every expected value is computed by an independent forward pass through the modules, collecting the
BatchNorm outputs, with BN running statistics set to non-trivial values first.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SMOKE
from torch import nn

from ali.config import load_config
from ali.data import images as image_data
from ali.eval.features import ENCODER_SETS, discriminator_features, encoder_features, extract
from ali.experiments import images as im
from ali.nets.architectures import SVHN
from ali.data.batches import as_model_input

RELEASED_DIM = 256 * 4 * 4 + 512 + 512 + 256
RELEASED_FIRST_DIM = 64 * 13 * 13 + 128 * 10 * 10 + 256 * 4 * 4 + 512 + 512 + 256
DCGAN_DIM = 128 * 4 * 4 + 256 * 4 * 4 + 512
RAW_DIM = 3 * 32 * 32


def test_the_arithmetic():
    assert RELEASED_DIM == 5_376
    assert RELEASED_FIRST_DIM == 28_992
    assert DCGAN_DIM == 6_656
    assert RAW_DIM == 3_072


def randomise_batchnorm(model: nn.Module, seed: int) -> None:
    """Non-trivial BN running statistics and affine parameters, so that eval mode is visible."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.05)
                m.running_var.copy_(torch.rand(c, generator=g) * 2 + 0.1)
                m.weight.copy_(1 + 0.3 * torch.randn(c, generator=g))
                m.bias.copy_(0.3 * torch.randn(c, generator=g))


@pytest.fixture(scope="module")
def models() -> dict[str, nn.Module]:
    """The smoke preset's digits models: the SVHN architecture (Table 4), in inference mode."""
    plan = im.plan(load_config(SMOKE))
    out = {}
    for i, name in enumerate(("ali", "vae", "gan")):
        spec = copy.deepcopy(plan[f"digits/{name}/seed0"])
        assert spec["arch"] == "svhn"
        torch.manual_seed(i)
        model = im.build(spec)
        randomise_batchnorm(model, seed=10 + i)
        out[name] = model.eval()
    return out


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    x, _ = image_data.load("digits", "test")
    return torch.from_numpy(np.ascontiguousarray(x[:24]))


@pytest.fixture(scope="module")
def x(images) -> torch.Tensor:
    return as_model_input(images)


def bn_outputs(stack: nn.Sequential, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """A manual forward through a Stack's modules: every BatchNorm output (before the nonlinearity that
    follows it), and the final output."""
    outs = []
    mods = list(stack)
    with torch.no_grad():
        for i, m in enumerate(mods):
            x = m(x)
            if isinstance(m, nn.BatchNorm2d):
                assert isinstance(mods[i + 1], nn.LeakyReLU)  # what comes next is the nonlinearity
                outs.append(x)
    return outs, x


# ------------------------------------------------------------------------------------- encoders
def test_encoder_rows_have_the_table_4_shapes(models):
    stack = models["ali"].encoder.net.net
    assert stack.channels == [32, 64, 128, 256, 512, 512, 512]
    assert stack.sizes == [28, 13, 10, 4, 1, 1, 1]
    assert models["ali"].z_dim == SVHN.z_dim == 256


@pytest.mark.parametrize("source", ["ali", "vae"])
def test_released_features_are_rows_4_to_6_after_bn_and_mu(models, x, source):
    model = models[source]
    f = encoder_features(model, x, "released")
    assert f.shape == (len(x), RELEASED_DIM)
    bn, out = bn_outputs(model.encoder.net.net, x)
    assert [tuple(h.shape[1:]) for h in bn] == [(32, 28, 28), (64, 13, 13), (128, 10, 10), (256, 4, 4),
                                              (512, 1, 1), (512, 1, 1)]
    mu = out.flatten(1)[:, :256]
    expected = torch.cat([bn[3].flatten(1), bn[4].flatten(1), bn[5].flatten(1), mu], 1)
    assert torch.allclose(f, expected, rtol=1e-5, atol=1e-5)
    # pre-activation: the BN outputs, not the LeakyReLU outputs (which differ where negative)
    assert (f[:, :4096] < -0.1).any()
    post = F.leaky_relu(bn[3].flatten(1), SVHN.leak)
    assert not torch.allclose(f[:, :4096], post, atol=1e-3)


@pytest.mark.parametrize("source", ["ali", "vae"])
def test_released_first_features_are_rows_2_to_6_and_mu(models, x, source):
    model = models[source]
    f = encoder_features(model, x, "released_first")
    assert f.shape == (len(x), RELEASED_FIRST_DIM)
    bn, out = bn_outputs(model.encoder.net.net, x)
    expected = torch.cat([h.flatten(1) for h in bn[1:6]] + [out.flatten(1)[:, :256]], 1)
    assert torch.allclose(f, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("source", ["ali", "vae"])
def test_mu_features_are_the_posterior_mean(models, x, source):
    model = models[source]
    f = encoder_features(model, x, "mu")
    with torch.no_grad():
        mu, log_sigma = model.encoder.distribution(x)
        raw = model.encoder.net(x)
    assert f.shape == (len(x), 256)
    assert torch.allclose(f, mu, rtol=1e-5, atol=1e-6)
    assert torch.allclose(f, raw[:, :256], rtol=1e-5, atol=1e-6)  # the first z_dim of the encoder output
    assert not torch.allclose(f, log_sigma, atol=1e-3)
    # and the tail of 'released' is mu too
    assert torch.allclose(encoder_features(model, x, "released")[:, -256:], mu, rtol=1e-5, atol=1e-6)


def test_unknown_feature_set_is_refused(models, x):
    assert ENCODER_SETS == ("released", "released_first", "mu")
    with pytest.raises(ValueError, match="feature set"):
        encoder_features(models["ali"], x, "all_layers")


# ------------------------------------------------------------------------------- inference mode
@pytest.mark.parametrize("source", ["ali", "vae", "gan"])
def test_features_are_deterministic_and_independent_of_the_batch(models, images, source):
    model = models[source]
    a = extract(source, model, images)
    b = extract(source, model, images)
    assert torch.equal(a, b)  # no sampling, no dropout
    # a row's features do not depend on what else is in its batch (BN population statistics)
    other = torch.flip(images, [0])[:10]
    mixed = torch.cat([images[:5], other])
    c = extract(source, model, mixed)
    assert torch.allclose(c[:5], a[:5], rtol=1e-5, atol=1e-5)
    alone = extract(source, model, images[3:4])
    assert torch.allclose(alone[0], a[3], rtol=1e-5, atol=1e-5)


def test_bn_uses_the_running_statistics(models, x):
    """Row 4's released features, by hand: (conv(h) - running_mean) / sqrt(running_var + eps) * gamma + beta."""
    model = models["ali"]
    stack = model.encoder.net.net
    mods = list(stack)
    bns = [i for i, m in enumerate(mods) if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        h = x
        for m in mods[:bns[3]]:  # through row 4's convolution
            h = m(h)
        bn = mods[bns[3]]
        by_hand = ((h - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps)
                   * bn.weight[:, None, None] + bn.bias[:, None, None])
        batch_stats = F.batch_norm(h, None, None, bn.weight, bn.bias, training=True, eps=bn.eps)
    f = encoder_features(model, x, "released")[:, :4096]
    assert torch.allclose(f, by_hand.flatten(1), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(f, batch_stats.flatten(1), atol=1e-2)


def test_extraction_leaves_the_model_unchanged(models, images):
    model = models["ali"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    extract("ali", model, images, "released_first")
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not model.training


# ------------------------------------------------------------------------------------- GAN and raw
def test_gan_features_are_dcgan_style(models, x):
    model = models["gan"]
    f = discriminator_features(model, x)
    assert f.shape == (len(x), DCGAN_DIM)
    dx = model.discriminator.dx
    assert dx.channels == [32, 64, 128, 256, 512] and dx.sizes == [28, 13, 10, 4, 1]
    bn, _ = bn_outputs(dx, x)  # rows 2-5 have BN (row 1 has a bias and no BN)
    assert [tuple(h.shape[1:]) for h in bn] == [(64, 13, 13), (128, 10, 10), (256, 4, 4), (512, 1, 1)]
    pooled = [F.adaptive_max_pool2d(bn[1], 4), bn[2], bn[3]]  # 10x10 max-pooled to 4x4; 4x4 and 1x1 kept
    expected = torch.cat([h.flatten(1) for h in pooled], 1)
    assert torch.allclose(f, expected, rtol=1e-5, atol=1e-5)
    assert (f < -0.1).any()  # before the LeakyReLU


def test_raw_features_are_pixels_in_the_unit_interval(images):
    f = extract("raw", None, images)
    assert f.shape == (len(images), RAW_DIM) and f.dtype == torch.float32
    assert torch.equal(f, images.float().div(255).flatten(1))
    assert f.min() >= 0 and f.max() <= 1 and f.max() > 0.9


@pytest.mark.parametrize("source,dim", [("ali", RELEASED_DIM), ("vae", RELEASED_DIM), ("gan", DCGAN_DIM),
                                        ("raw", RAW_DIM)])
def test_extract_does_not_depend_on_the_batch_size(models, images, source, dim):
    model = models.get(source)
    small = extract(source, model, images, batch_size=7)  # 24 images: batches of 7, 7, 7, 3
    large = extract(source, model, images, batch_size=500)
    assert small.shape == large.shape == (len(images), dim)
    assert small.dtype == torch.float32
    assert torch.allclose(small, large, rtol=1e-5, atol=1e-5)
    if source in ("ali", "vae"):
        assert torch.allclose(large, encoder_features(model, as_model_input(images)), rtol=1e-5, atol=1e-5)
    elif source == "gan":
        assert torch.allclose(large, discriminator_features(model, as_model_input(images)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("feature_set,dim", [("released", RELEASED_DIM), ("released_first", RELEASED_FIRST_DIM),
                                             ("mu", 256)])
def test_extract_passes_the_feature_set(models, images, feature_set, dim):
    assert extract("ali", models["ali"], images[:5], feature_set).shape == (5, dim)
