"""The mixture networks against REFERENCE.md section 4.5, and the shared layers."""

from __future__ import annotations

import pytest
import torch
from conftest import n_params
from torch import nn

from ali.nets import mlp
from ali.nets.layers import BN_EPS, BN_MOMENTUM, Maxout, init_normal_
from ali.nets.stochastic import ConcatDiscriminator, GaussianEncoder, ImplicitEncoder

N = mlp.MixtureNets()
B = 7


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- Parameter counts, written out from REFERENCE.md -----------------------------------------------
BN400 = 2 * 400  # BatchNorm1d(400): weight + bias (running stats are buffers, not parameters)
HIDDEN_400 = 400 * 400 + BN400  # Linear(400 -> 400, no bias) + BN
# Encoder: concat(x, eps) = 4 -> 400 -> 400 -> 2
ENCODER = (4 * 400 + BN400) + HIDDEN_400 + (400 * 2 + 2)  # 2400 + 160800 + 802 = 164002
# Decoder: 2 -> 400 -> 400 -> 400 -> 400 -> 2
DECODER = (2 * 400 + BN400) + 3 * HIDDEN_400 + (400 * 2 + 2)  # 1600 + 482400 + 802 = 484802
# Maxout(in -> 200, 5 pieces) = Linear(in -> 1000) with bias
MAXOUT_200 = 200 * 1000 + 1000  # 201000
DISC_JOINT = (4 * 1000 + 1000) + 2 * MAXOUT_200 + (200 + 1)  # 5000 + 402000 + 201 = 407201
DISC_X = (2 * 1000 + 1000) + 2 * MAXOUT_200 + (200 + 1)  # 3000 + 402000 + 201 = 405201
# VAE encoder head: x = 2 -> 400 -> 400 -> 4 (mu, log sigma)
VAE_ENCODER = (2 * 400 + BN400) + HIDDEN_400 + (400 * 4 + 4)  # 1600 + 160800 + 1604 = 164004


def test_param_count_arithmetic():
    """The totals above, as numbers (guards the arithmetic itself)."""
    assert (ENCODER, DECODER, DISC_JOINT, DISC_X, VAE_ENCODER) == (164002, 484802, 407201, 405201, 164004)


def test_encoder_shape_and_params():
    """G_z: (x, eps) -> z of shape (B, 2); 4 -> 400 -> 400 -> 2."""
    enc = ImplicitEncoder(mlp.encoder(N), N.noise_dim)
    z = enc(torch.randn(B, 2))
    assert z.shape == (B, 2)
    assert n_params(enc) == ENCODER
    first = enc.net[0][0]
    assert (first.in_features, first.out_features) == (4, 400)


def test_implicit_encoder_is_stochastic():
    """The encoder's noise input is used: the same x gives different z on two calls."""
    enc = ImplicitEncoder(mlp.encoder(N), N.noise_dim).eval()
    x = torch.randn(B, 2)
    assert not torch.allclose(enc(x), enc(x))


def test_decoder_shape_and_params():
    """G_x: z (B, 2) -> x (B, 2); 2 -> 400 x4 -> 2."""
    dec = mlp.decoder(N)
    assert dec(torch.randn(B, 2)).shape == (B, 2)
    assert n_params(dec) == DECODER
    assert len(dec) == 5  # 4 hidden blocks + output Linear


def test_joint_discriminator_shape_and_params():
    """D(x, z) on concat(x, z): logits of shape (B,)."""
    d = ConcatDiscriminator(mlp.discriminator(N, joint=True))
    out = d(torch.randn(B, 2), torch.randn(B, 2))
    assert out.shape == (B,)
    assert n_params(d) == DISC_JOINT


def test_x_only_discriminator_shape_and_params():
    """The GAN baseline's D(x): same network, input x alone."""
    d = ConcatDiscriminator(mlp.discriminator(N, joint=False))
    out = d(torch.randn(B, 2))
    assert out.shape == (B,)
    assert n_params(d) == DISC_X


def test_discriminator_structure():
    """Three maxout(200, 5 pieces) layers then Linear(200 -> 1); no BN or dropout."""
    d = mlp.discriminator(N, joint=True)
    maxouts = [m for m in d if isinstance(m, Maxout)]
    assert len(maxouts) == 3
    assert all((m.out_features, m.pieces) == (200, 5) for m in maxouts)
    assert isinstance(d[-1], nn.Linear) and (d[-1].in_features, d[-1].out_features) == (200, 1)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.Dropout)) for m in d.modules())


@pytest.mark.parametrize("make", [lambda: mlp.encoder(N), lambda: mlp.decoder(N),
                                  lambda: mlp.encoder(N, out_dim=4, noise=False)])
def test_batchnorm_settings(make):
    """Every BN uses Blocks' eps 1e-4 and PyTorch momentum 0.05 (not PyTorch's 1e-5 / 0.1)."""
    assert (BN_EPS, BN_MOMENTUM) == (1e-4, 0.05)
    bns = [m for m in make().modules() if isinstance(m, nn.BatchNorm1d)]
    assert bns
    for bn in bns:
        assert bn.eps == 1e-4
        assert bn.momentum == 0.05


@pytest.mark.parametrize("make", [lambda: mlp.encoder(N), lambda: mlp.decoder(N)])
def test_hidden_linears_have_no_bias_output_has_bias(make):
    """Hidden: Linear(no bias) -> BN -> ReLU; output: Linear with bias, no nonlinearity."""
    net = make()
    *hidden, out = list(net)
    for block in hidden:
        lin, bn, act = block
        assert isinstance(lin, nn.Linear) and lin.bias is None
        assert isinstance(bn, nn.BatchNorm1d) and bn.num_features == lin.out_features == 400
        assert isinstance(act, nn.ReLU)
    assert isinstance(out, nn.Linear) and out.bias is not None


def test_output_layer_has_no_nonlinearity():
    """The generators' outputs can be negative (no ReLU/tanh at the end)."""
    dec = mlp.decoder(N)
    assert (dec(torch.randn(256, 2)) < 0).any()


def test_running_stats_update_with_momentum_0p05():
    """One training batch moves BN's running mean to 0.95 * old + 0.05 * batch mean."""
    dec = mlp.decoder(N)
    bn = dec[0][1]
    z = torch.randn(64, 2)
    with torch.no_grad():
        h = dec[0][0](z)
        dec.train()(z)
    torch.testing.assert_close(bn.running_mean, 0.05 * h.mean(0))


def test_maxout_groups_consecutive_units():
    """Maxout takes the max over consecutive groups [0:p], [p:2p], ... of the Linear's units."""
    m = Maxout(2, 2, 3)
    with torch.no_grad():
        m.linear.weight.zero_()
        m.linear.weight[0, 0] = 1.0  # unit 0 = x0 (+ bias 1)
        m.linear.bias.copy_(torch.tensor([1.0, 5.0, 3.0, -1.0, -7.0, -2.0]))
    x = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    out = m(x)
    # consecutive groups: max(1, 5, 3) = 5, max(-1, -7, -2) = -1; with x0 = 10: max(11, 5, 3) = 11
    # (interleaved groups {0, 2, 4}, {1, 3, 5} would give 3 and 5 instead)
    torch.testing.assert_close(out, torch.tensor([[5.0, -1.0], [11.0, -1.0]]))


def test_maxout_keeps_leading_dims():
    """Maxout works on any leading shape."""
    m = Maxout(3, 4, 5)
    assert m(torch.randn(2, 6, 3)).shape == (2, 6, 4)


def test_init_normal_sets_std_and_zero_biases():
    """Linear weights ~ N(0, std^2), biases 0, BN scale 1 / shift 0."""
    torch.manual_seed(1)
    dec = mlp.decoder(N)
    with torch.no_grad():  # dirty the biases so zeroing is observable
        dec[-1].bias.fill_(3.0)
    init_normal_(dec, 0.02)
    lin400 = dec[1][0].weight  # 160,000 weights: std estimate error ~0.2 %
    assert lin400.std().item() == pytest.approx(0.02, rel=0.02)
    assert lin400.mean().abs().item() < 0.02 * 0.01
    assert dec[-1].bias.abs().max().item() == 0.0
    for m in dec.modules():
        if isinstance(m, nn.BatchNorm1d):
            assert torch.all(m.weight == 1.0) and torch.all(m.bias == 0.0)


@pytest.mark.parametrize("std", [0.005, 0.1])
def test_init_normal_follows_requested_std(std):
    """The std argument is honoured (not a fixed 0.02), including maxout layers."""
    d = init_normal_(mlp.discriminator(N, joint=True), std)
    w = d[1].linear.weight  # 200,000 weights
    assert w.std().item() == pytest.approx(std, rel=0.02)
    assert all(m.bias.abs().max().item() == 0.0 for m in d.modules() if isinstance(m, nn.Linear))


def test_vae_encoder_head():
    """mlp.encoder(n, out_dim=4, noise=False) in a GaussianEncoder gives mu, log sigma (B, 2)."""
    enc = GaussianEncoder(mlp.encoder(N, out_dim=4, noise=False))
    assert n_params(enc) == VAE_ENCODER
    x = torch.randn(B, 2)
    mu, log_sigma = enc.distribution(x)
    assert mu.shape == (B, 2) and log_sigma.shape == (B, 2)
    full = enc.net(x)
    torch.testing.assert_close(mu, full[:, :2])
    torch.testing.assert_close(log_sigma, full[:, 2:])
    assert enc(x).shape == (B, 2)


def test_gaussian_encoder_reparametrises():
    """forward = mu + exp(log sigma) * eps: with log sigma -> -inf it returns mu exactly."""
    enc = GaussianEncoder(mlp.encoder(N, out_dim=4, noise=False)).eval()
    with torch.no_grad():
        enc.net[-1].bias[2:] = -1e4  # sigma = exp(-1e4 + ...) = 0
        x = torch.randn(B, 2)
        mu, _ = enc.distribution(x)
        torch.testing.assert_close(enc(x), mu)
