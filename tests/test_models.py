"""The models' update rules and losses, checked against hand computations.

The released code's rule (REFERENCE.md, "Simultaneous updates"): one forward pass per minibatch; the
discriminator moves along grad L_D and the generators (encoder + decoder) along grad L_G, both taken
at the same pre-step parameters. Each test below rebuilds that step by hand on a deep copy of the
model, with the same RNG state, and compares every parameter and buffer.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from conftest import SMOKE
from torch import nn

from ali.config import load_config
from ali.experiments import mixture as mx
from ali.models.base import AdversarialModel, SingleObjectiveModel
from ali.optim import AdamConfig

BATCH = 16


@pytest.fixture(scope="module")
def smoke_plan() -> dict:
    return mx.plan(load_config(SMOKE))


def small_spec(plan: dict, model: str, protocol: str = "fixed", update: str | None = None) -> dict:
    """A smoke-plan spec with narrow networks (same layer pattern, fewer units): fast, same code paths."""
    spec = copy.deepcopy(plan[f"{protocol}/{model}/run0"])
    spec["nets"].update(gen_hidden=24, disc_hidden=12)
    spec["data"].update(n_train=2000, n_heldout=500)
    if update is not None:
        spec["update"] = update
    return spec


def batch(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 4.0 * torch.rand(BATCH, 2, generator=g) - 2.0


def built(spec: dict, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = mx.build(spec)
    model.train()
    return model


def fresh_adam(params, spec: dict, state: dict | None = None) -> torch.optim.Adam:
    """A new Adam with the spec's hyperparameters (betas in PyTorch's convention), optionally warm."""
    adam = AdamConfig(**spec["adam"])
    opt = torch.optim.Adam(params, lr=adam.lr, betas=adam.torch_betas(), eps=1e-8)
    if state is not None:
        opt.load_state_dict(copy.deepcopy(state))
    return opt


def adam_step(opt: torch.optim.Optimizer, params, grads) -> None:
    for p, g in zip(params, grads):
        p.grad = g.clone()
    opt.step()


def assert_state_close(a: nn.Module, b: nn.Module, *, only: str | None = None) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        if only is not None and not k.startswith(only):
            continue
        if sa[k].is_floating_point():
            assert torch.allclose(sa[k], sb[k], rtol=1e-6, atol=1e-9), k
        else:
            assert torch.equal(sa[k], sb[k]), k


def warm_up(model, steps: int) -> None:
    for i in range(steps):
        torch.manual_seed(1000 + i)
        model.train_step(batch(1000 + i))


# ------------------------------------------------------------------------------ simultaneous update
@pytest.mark.parametrize("warmup", [0, 3], ids=["fresh-adam", "warm-adam"])
@pytest.mark.parametrize("name", ["ali", "gan"])
def test_simultaneous_step_is_adam_on_both_gradients_at_the_same_point(smoke_plan, name, warmup):
    spec = small_spec(smoke_plan, name)
    assert spec["update"] == "simultaneous"  # the released code's rule is the default
    model = built(spec)
    warm_up(model, warmup)
    ref = copy.deepcopy(model)
    x = batch()

    torch.manual_seed(123)
    model.train_step(x)

    # By hand: ONE forward pass, both gradients at the pre-step parameters, then both Adam steps.
    torch.manual_seed(123)
    loss_d, loss_g = ref.losses(x)
    d_params, g_params = ref.d_parameters(), ref.g_parameters()
    grad_d = torch.autograd.grad(loss_d, d_params, retain_graph=True)
    grad_g = torch.autograd.grad(loss_g, g_params)
    opt_d = fresh_adam(d_params, spec, ref.optimizers["d"].state_dict() if warmup else None)
    opt_g = fresh_adam(g_params, spec, ref.optimizers["g"].state_dict() if warmup else None)
    adam_step(opt_d, d_params, grad_d)
    adam_step(opt_g, g_params, grad_g)

    assert_state_close(model, ref)  # every parameter and BN buffer
    # and the step did move both players
    before = built(spec)
    warm_up(before, warmup)
    for (k, p), p0 in zip(model.named_parameters(), before.parameters()):
        assert not torch.equal(p, p0), f"{k} did not move"


@pytest.mark.parametrize("name", ["ali", "gan"])
def test_alternating_moves_d_first_then_g_at_the_new_d(smoke_plan, name):
    simultaneous = built(small_spec(smoke_plan, name, update="simultaneous"))
    spec = small_spec(smoke_plan, name, update="alternating")
    alternating = built(spec)
    assert_state_close(simultaneous, alternating)  # the same initial weights
    ref = copy.deepcopy(alternating)
    x = batch()

    torch.manual_seed(123)
    simultaneous.train_step(x)
    torch.manual_seed(123)
    alternating.train_step(x)

    # By hand: D steps on the first forward pass, then a fresh forward pass at the NEW D for G.
    torch.manual_seed(123)
    loss_d, _ = ref.losses(x)
    d_params, g_params = ref.d_parameters(), ref.g_parameters()
    adam_step(fresh_adam(d_params, spec), d_params, torch.autograd.grad(loss_d, d_params))
    _, loss_g = ref.losses(x)
    adam_step(fresh_adam(g_params, spec), g_params, torch.autograd.grad(loss_g, g_params))
    assert_state_close(alternating, ref)

    # D's step is the same either way (same first pass); G's is not, since D moved before G's gradient.
    assert_state_close(alternating, simultaneous, only="discriminator.")
    g_sim = torch.cat([p.flatten() for p in simultaneous.g_parameters()])
    g_alt = torch.cat([p.flatten() for p in alternating.g_parameters()])
    assert not torch.allclose(g_sim, g_alt)


def test_unknown_update_rule_is_rejected(smoke_plan):
    spec = small_spec(smoke_plan, "ali", update="sideways")
    with pytest.raises(ValueError, match="sideways"):
        mx.build(spec)


# ------------------------------------------------------------------------- who each loss reaches
@pytest.mark.parametrize("name", ["ali", "gan", "posthoc"])
def test_players_partition_the_trainable_parameters(smoke_plan, name):
    model = built(small_spec(smoke_plan, name))
    d = {id(p) for g in model.optimizers["d"].param_groups for p in g["params"]}
    g = {id(p) for grp in model.optimizers["g"].param_groups for p in grp["params"]}
    assert d == {id(p) for p in model.discriminator.parameters()}
    expected_g = set() if name == "gan" else {id(p) for p in model.encoder.parameters()}
    if name in ("ali", "gan"):
        expected_g |= {id(p) for p in model.decoder.parameters()}
    assert g == expected_g
    assert not d & g
    assert d | g == {id(p) for p in model.parameters() if p.requires_grad}


@pytest.mark.parametrize("name", ["ali", "gan"])
def test_grads_after_a_step_are_grad_l_d_on_d_and_grad_l_g_on_g(smoke_plan, name):
    model = built(small_spec(smoke_plan, name))
    ref = copy.deepcopy(model)
    x = batch()
    torch.manual_seed(5)
    model.train_step(x)
    torch.manual_seed(5)
    loss_d, loss_g = ref.losses(x)
    d_params, g_params = ref.d_parameters(), ref.g_parameters()
    gd = torch.autograd.grad(loss_d, d_params, retain_graph=True)
    gg = torch.autograd.grad(loss_g, g_params, retain_graph=True)
    gd_of_lg = torch.autograd.grad(loss_g, d_params, retain_graph=True, allow_unused=True)
    gg_of_ld = torch.autograd.grad(loss_d, g_params, allow_unused=True)
    for p, e in zip(model.d_parameters(), gd):
        assert torch.allclose(p.grad, e, rtol=1e-6, atol=1e-10)
    for p, e in zip(model.g_parameters(), gg):
        assert torch.allclose(p.grad, e, rtol=1e-6, atol=1e-10)
    # the check can tell the losses apart: grad L_G w.r.t. D (and L_D w.r.t. G) is another vector
    flat = lambda gs: torch.cat([g.flatten() for g in gs if g is not None])  # noqa: E731
    assert not torch.allclose(flat(gd), flat(gd_of_lg))
    assert not torch.allclose(flat(gg), flat(gg_of_ld))


@pytest.mark.parametrize("frozen", ["d", "g"])
@pytest.mark.parametrize("name", ["ali", "gan"])
def test_zero_learning_rate_freezes_exactly_that_player(smoke_plan, name, frozen):
    model = built(small_spec(smoke_plan, name))
    for group in model.optimizers[frozen].param_groups:
        group["lr"] = 0.0
    before = copy.deepcopy(model)
    for i in range(3):
        torch.manual_seed(i)
        model.train_step(batch(i))
    frozen_params = model.d_parameters() if frozen == "d" else model.g_parameters()
    moving_params = model.g_parameters() if frozen == "d" else model.d_parameters()
    frozen_before = before.d_parameters() if frozen == "d" else before.g_parameters()
    moving_before = before.g_parameters() if frozen == "d" else before.d_parameters()
    assert all(torch.equal(p, q) for p, q in zip(frozen_params, frozen_before))
    assert all(not torch.equal(p, q) for p, q in zip(moving_params, moving_before))


# ----------------------------------------------------------------------------- frozen decoders
@pytest.mark.parametrize("name", ["inverse", "posthoc"])
def test_frozen_decoder_never_changes_and_stays_in_eval_mode(smoke_plan, name):
    model = built(small_spec(smoke_plan, name))
    decoder_before = copy.deepcopy(model.decoder.state_dict())  # weights AND BN running statistics
    encoder_before = copy.deepcopy(model.encoder.state_dict())
    model.train()
    for i in range(4):
        model.train()  # whatever the caller does, the decoder keeps its population statistics
        assert model.training and model.encoder.training
        assert not any(m.training for m in model.decoder.modules())
        torch.manual_seed(i)
        losses = model.train_step(batch(i))
        assert all(torch.isfinite(v) for v in losses.values())
    for k, v in model.decoder.state_dict().items():
        assert torch.equal(v, decoder_before[k]), k
    assert all(not p.requires_grad and p.grad is None for p in model.decoder.parameters())
    opt_params = {id(p) for opt in model.optimizers.values() for g in opt.param_groups for p in g["params"]}
    assert not opt_params & {id(p) for p in model.decoder.parameters()}
    # ... while the encoder did learn
    assert any(not torch.equal(v, encoder_before[k]) for k, v in model.encoder.state_dict().items())
    model.eval()
    assert not model.training and not model.decoder.training


# ----------------------------------------------------------------------------------- VAE, inverse
@pytest.mark.parametrize("likelihood_std", [0.05, 0.7])
def test_vae_loss_is_the_negative_elbo(smoke_plan, likelihood_std):
    spec = small_spec(smoke_plan, "vae")
    spec["vae_likelihood_std"] = likelihood_std
    model = built(spec)
    x = batch(3)

    torch.manual_seed(11)
    loss = model.loss(x)

    # By hand with torch.distributions: -E_q[log p(x|z)] + KL(q(z|x) || N(0, I)), one z per x.
    torch.manual_seed(11)
    out = model.encoder.net(x)
    mu, log_sigma = out[:, :2], out[:, 2:]
    z = mu + log_sigma.exp() * torch.randn(mu.shape)
    x_hat = model.decoder(z)
    log_lik = torch.distributions.Normal(x_hat, likelihood_std).log_prob(x).sum(1)
    q = torch.distributions.Normal(mu, log_sigma.exp())
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(1)
    expected = (-log_lik + kl).mean()
    assert torch.allclose(loss, expected, rtol=1e-5, atol=1e-5)

    # and the Gaussian constant is per dimension: log(2 pi s^2) / 2 * x_dim nats
    const = 0.5 * 2 * math.log(2 * math.pi * likelihood_std**2)
    recon = 0.5 * (x - x_hat).pow(2).sum(1) / likelihood_std**2 + const
    assert torch.allclose(loss, (recon + kl).mean(), rtol=1e-5, atol=1e-5)


def test_inverse_mapping_loss_is_mean_squared_latent_error(smoke_plan):
    model = built(small_spec(smoke_plan, "inverse"))
    x = batch(4)
    torch.manual_seed(21)
    loss = model.loss(x)

    torch.manual_seed(21)
    z = torch.randn(BATCH, 2)             # z ~ p(z)
    eps = torch.randn(BATCH, 2)           # the implicit encoder's noise
    with torch.no_grad():
        x_gen = model.decoder(z)
    z_rec = model.encoder.net(torch.cat([x_gen, eps], dim=1))
    expected = (z - z_rec).pow(2).sum(1).mean()
    assert torch.allclose(loss, expected, rtol=1e-6, atol=1e-7)

    # the objective never looks at the data, only at the batch size
    torch.manual_seed(21)
    assert torch.allclose(model.loss(x + 100.0), expected, rtol=1e-6, atol=1e-7)


# -------------------------------------------------------------------------------------- build()
@pytest.mark.parametrize("name,has_encoder,kind,opts", [
    ("ali", True, AdversarialModel, {"d", "g"}),
    ("gan", False, AdversarialModel, {"d", "g"}),
    ("inverse", True, SingleObjectiveModel, {"model"}),
    ("posthoc", True, AdversarialModel, {"d", "g"}),
    ("vae", True, SingleObjectiveModel, {"model"}),
])
def test_build_gives_the_right_model_and_pytorch_betas(smoke_plan, name, has_encoder, kind, opts):
    spec = smoke_plan[f"fixed/{name}/run0"]  # the full paper-size networks
    assert spec["adam"] == {"lr": 1e-4, "beta1": 0.8, "beta2": 0.001, "convention": "blocks"}
    torch.manual_seed(0)
    model = mx.build(spec)
    assert model.name == name and isinstance(model, kind)
    assert model.has_encoder is has_encoder
    assert hasattr(model, "encoder") is has_encoder
    assert set(model.optimizers) == opts
    for opt in model.optimizers.values():
        assert isinstance(opt, torch.optim.Adam)
        for group in opt.param_groups:
            assert group["betas"] == pytest.approx((0.2, 0.999), abs=1e-12)  # never (0.8, 0.001)
            assert group["lr"] == pytest.approx(1e-4)
            assert group["eps"] == 1e-8
    # init: every Linear weight ~ N(0, init_std^2), biases 0
    weights = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, nn.Linear)])
    assert weights.std().item() == pytest.approx(spec["init_std"], rel=0.02)
    assert all(not m.bias.any() for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None)
