"""The K+1 semi-supervised models (ali/models/kplus1.py) against openai/improved-gan's
``train_cifar_feature_matching.py`` as REFERENCE.md ("Table 2") describes it:

- K logits, the fake class's logit fixed at 0: l = logsumexp(logits), p(real) = sigmoid(l);
  L_unl = -1/2 mean(l_unl) + 1/2 mean(softplus(l_unl)) + 1/2 mean(softplus(l_fake)); L_lab = cross-entropy;
- lr factor min(3 - epoch/400, 1) over 1,200 epochs (SVHN: 900 / 300);
- Polyak averages of D's weights that start at zero, used for the test error;
- GAN-FM: the generator matches the mean of D's last hidden features (mean absolute difference);
- ALI K+1: the generators play the ALI game on the real/fake logit l.

Expected values are computed by hand (math / numpy), not with the functions under test. Models use
the smoke preset's spec (digits, the SVHN architecture) with small batches; no dataset is read.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import SMOKE

from ali.config import load_config
from ali.experiments import semisup
from ali.models.kplus1 import ALIKPlus1, GANFeatureMatching, KPlus1Model, kplus1_losses, linear_decay
from ali.train.loop import load_run_checkpoint, save_run_checkpoint

LR = 3e-4  # the smoke preset keeps the paper's (improved-gan's) learning rate


@pytest.fixture(scope="module")
def smoke_specs() -> dict[str, dict]:
    return semisup.plan(load_config(SMOKE))


def make_spec(smoke_specs, model: str, **over) -> dict:
    spec = dict(smoke_specs[f"digits/{model}/labels100/seed0"])
    spec.update({"batch_size": 10, **over})
    return spec


def indexed_labelled_set(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n uint8 images whose every pixel holds the image's index (n <= 256), labels index % 10."""
    assert n <= 256
    x = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 32, 32).contiguous()
    return x, torch.arange(n) % 10


def build(spec: dict, n_labelled: int = 100):
    torch.manual_seed(spec["seed"])
    model = semisup.build(spec)
    model.set_labelled(*indexed_labelled_set(n_labelled))
    return model


def batch_indices(x: torch.Tensor) -> list[int]:
    """Recover the index each image of a labelled batch encodes (float pixels in [0, 1])."""
    return [int(v) for v in (x[:, 0, 0, 0] * 255).round().long()]


def unlabelled_batch(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g)


def np_softplus(v: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, v)


def np_logsumexp(a: np.ndarray) -> np.ndarray:
    m = a.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=1, keepdims=True)))[:, 0]


def np_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np_logsumexp(logits) - logits[np.arange(len(labels)), labels]))


def np_unlabelled_loss(logits_unl: np.ndarray, logits_fake: np.ndarray) -> float:
    l_unl, l_fake = np_logsumexp(logits_unl), np_logsumexp(logits_fake)
    return float(-0.5 * l_unl.mean() + 0.5 * np_softplus(l_unl).mean() + 0.5 * np_softplus(l_fake).mean())


# ---------------------------------------------------------------------------------------- losses
def test_losses_with_all_zero_logits_by_hand():
    k = 10
    zeros = torch.zeros(4, k, dtype=torch.float64)
    loss_lab, loss_unl = kplus1_losses(zeros, torch.tensor([0, 3, 7, 9]), zeros, zeros)
    # uniform logits: cross-entropy log K; l = log K, softplus(log K) = log(K + 1)
    assert loss_lab.item() == pytest.approx(math.log(10), abs=1e-12)
    assert loss_unl.item() == pytest.approx(-0.5 * math.log(10) + math.log(11), abs=1e-12)
    assert loss_unl.item() == pytest.approx(1.2466027, abs=1e-6)  # ln 11 - ln 10 / 2


def test_losses_match_a_hand_computation_on_explicit_logits():
    logits_lab = np.array([[2.0, -1.0, 0.5], [0.0, 0.0, 3.0], [-2.0, 1.0, 1.0], [0.3, 0.2, 0.1]])
    labels = np.array([0, 2, 1, 2])
    logits_unl = np.array([[1.0, 2.0, 3.0], [-5.0, -5.0, -5.0], [0.0, 10.0, 0.0]])
    logits_fake = np.array([[0.0, -1.0, -2.0], [4.0, 4.0, 4.0]])  # a different batch size, as allowed
    loss_lab, loss_unl = kplus1_losses(torch.tensor(logits_lab), torch.tensor(labels), torch.tensor(logits_unl),
                                       torch.tensor(logits_fake))
    assert loss_lab.item() == pytest.approx(np_cross_entropy(logits_lab, labels), abs=1e-12)
    assert loss_unl.item() == pytest.approx(np_unlabelled_loss(logits_unl, logits_fake), abs=1e-12)
    # the same numbers term by term with math only (row 2 of the unlabelled logits: l = log(3 e^-5))
    l_unl = [math.log(math.exp(1) + math.exp(2) + math.exp(3)), math.log(3) - 5, math.log(2 + math.exp(10))]
    l_fake = [math.log(1 + math.exp(-1) + math.exp(-2)), math.log(3) + 4]
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    by_hand = (-0.5 * sum(l_unl) / 3 + 0.5 * sum(sp(v) for v in l_unl) / 3 + 0.5 * sum(sp(v) for v in l_fake) / 2)
    assert loss_unl.item() == pytest.approx(by_hand, abs=1e-12)


def test_unlabelled_loss_is_the_gan_loss_on_the_real_fake_logit():
    # -1/2 l + 1/2 softplus(l) = 1/2 softplus(-l) = -1/2 log sigmoid(l): the usual D loss on l
    g = torch.Generator().manual_seed(0)
    unl, fake = torch.randn(6, 10, generator=g, dtype=torch.float64), torch.randn(5, 10, generator=g,
                                                                                  dtype=torch.float64)
    _, loss_unl = kplus1_losses(unl[:1], torch.tensor([0]), unl, fake)
    l_unl, l_fake = torch.logsumexp(unl, 1), torch.logsumexp(fake, 1)
    expected = -0.5 * torch.log(torch.sigmoid(l_unl)).mean() - 0.5 * torch.log(1 - torch.sigmoid(l_fake)).mean()
    assert loss_unl.item() == pytest.approx(expected.item(), abs=1e-12)


def test_p_real_is_the_k_plus_1_softmax_real_mass_when_the_fake_logit_is_zero():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(8, 10, generator=g, dtype=torch.float64) * 3
    z = torch.exp(logits).sum(1)
    p_real = torch.sigmoid(torch.logsumexp(logits, 1))
    k_plus_1 = torch.softmax(torch.cat([logits, torch.zeros(8, 1, dtype=torch.float64)], 1), 1)
    assert torch.allclose(p_real, z / (z + 1), atol=1e-14)
    assert torch.allclose(p_real, k_plus_1[:, :10].sum(1), atol=1e-14)
    assert torch.allclose(1 - p_real, k_plus_1[:, 10], atol=1e-14)


@pytest.mark.parametrize("shift", [-3.0, 2.5])
def test_shifting_all_k_logits_changes_l_unl_but_not_l_lab(shift):
    # The fake logit is pinned at 0, so the K logits' common offset is no longer free: it moves
    # l by exactly the shift, and so L_unl; the cross-entropy over K classes does not see it.
    rng = np.random.default_rng(2)
    lab, unl, fake = rng.normal(size=(5, 10)), rng.normal(size=(7, 10)), rng.normal(size=(7, 10))
    labels = rng.integers(0, 10, size=5)
    t = lambda a: torch.tensor(a)  # noqa: E731
    base_lab, base_unl = kplus1_losses(t(lab), t(labels), t(unl), t(fake))
    lab_s, unl_s = kplus1_losses(t(lab + shift), t(labels), t(unl + shift), t(fake + shift))
    assert lab_s.item() == pytest.approx(base_lab.item(), abs=1e-12)
    assert unl_s.item() == pytest.approx(np_unlabelled_loss(unl + shift, fake + shift), abs=1e-12)
    l_unl, l_fake = np_logsumexp(unl) + shift, np_logsumexp(fake) + shift
    expected = -0.5 * l_unl.mean() + 0.5 * np_softplus(l_unl).mean() + 0.5 * np_softplus(l_fake).mean()
    assert unl_s.item() == pytest.approx(expected, abs=1e-12)
    assert abs(unl_s.item() - base_unl.item()) > 1e-3


# ------------------------------------------------------------------------------ learning rate
def improved_gan_factor(epoch: int, epochs: int, decay_epochs: int) -> float:
    """improved-gan: lr = base * min(3 - epoch / 400, 1) for 1,200 epochs, i.e. (epochs / decay) - epoch / decay."""
    return min(epochs / decay_epochs - epoch / decay_epochs, 1.0)


@pytest.mark.parametrize("epochs,decay", [(1200, 400), (900, 300)])
def test_linear_decay_is_improved_gans_schedule(epochs, decay):
    spe = 500
    for epoch in range(epochs):
        for step in (epoch * spe, epoch * spe + spe - 1):  # constant within an epoch
            assert linear_decay(step, spe, epochs, decay) == pytest.approx(improved_gan_factor(epoch, epochs, decay),
                                                                         abs=1e-12)


def test_linear_decay_at_named_cifar10_epochs():
    spe = 500
    expected = {0: 1.0, 799: 1.0, 800: 1.0, 1000: 0.5, 1199: 1 / 400}
    for epoch, factor in expected.items():
        assert linear_decay(epoch * spe, spe, 1200, 400) == pytest.approx(factor, abs=1e-12)
        assert min(3 - epoch / 400, 1) == pytest.approx(factor, abs=1e-12)  # improved-gan's own expression
    expected_svhn = {0: 1.0, 599: 1.0, 600: 1.0, 750: 0.5, 899: 1 / 300}
    for epoch, factor in expected_svhn.items():
        assert linear_decay(epoch * spe + 7, spe, 900, 300) == pytest.approx(factor, abs=1e-12)


def test_no_decay_epochs_means_a_constant_rate():
    assert all(linear_decay(s, 3, 5, 0) == 1.0 for s in range(15))


def all_lrs(model) -> list[float]:
    return [group["lr"] for opt in model.optimizers.values() for group in opt.param_groups]


def test_on_step_sets_every_group_to_base_times_factor(smoke_specs):
    spec = make_spec(smoke_specs, "gan_fm", steps_per_epoch=2, epochs=5, decay_epochs=3)
    model = build(spec)
    assert set(model.optimizers) == {"d", "g"}
    assert model.base_lr == LR
    for step in range(10):
        model.on_step(step)
        factor = min(1.0, (5 - step // 2) / 3)
        lrs = all_lrs(model)
        assert len(lrs) >= 2 and all(lr == pytest.approx(LR * factor, rel=1e-12) for lr in lrs), (step, lrs)
        assert model.step == step
    assert all_lrs(model)[0] == pytest.approx(LR / 3)  # epoch 4 of 5: one third of the base rate


def test_resumed_optimiser_gets_the_schedules_rate_not_its_saved_one(smoke_specs, tmp_path):
    spec = make_spec(smoke_specs, "gan_fm", steps_per_epoch=2, epochs=4, decay_epochs=4)
    model = build(spec)
    model.on_step(7)  # epoch 3: factor 1/4
    assert all(lr == pytest.approx(LR / 4) for lr in all_lrs(model))
    ckpt = tmp_path / "checkpoint.pt"
    save_run_checkpoint(ckpt, model, 7, 0.0, "h")

    fresh = build(spec)
    load_run_checkpoint(ckpt, fresh, "h")
    assert all(lr == pytest.approx(LR / 4) for lr in all_lrs(fresh))  # torch restores the decayed lr ...
    assert fresh.base_lr == LR  # ... but the schedule's base comes from the spec
    fresh.on_step(0)
    assert all(lr == pytest.approx(LR) for lr in all_lrs(fresh))
    fresh.on_step(5)  # epoch 2: factor 2/4
    assert all(lr == pytest.approx(LR / 2) for lr in all_lrs(fresh))


# ------------------------------------------------------------------------------ labelled batches
def test_labelled_batch_is_a_pure_function_of_seed_and_step(smoke_specs):
    spec = make_spec(smoke_specs, "gan_fm")
    a, b = build(spec), build(spec)
    for step in (0, 3, 11, 250):
        a.on_step(step)
        torch.manual_seed(step + 99)  # the global RNG does not matter
        x1, y1 = a.labelled_batch()
        x2, y2 = a.labelled_batch()
        b.on_step(step)
        torch.manual_seed(12345)
        x3, y3 = b.labelled_batch()
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
        assert torch.equal(x1, x3) and torch.equal(y1, y3)
    a.on_step(3)
    b.on_step(4)
    assert batch_indices(a.labelled_batch()[0]) != batch_indices(b.labelled_batch()[0])
    other = build({**spec, "seed": 1})
    other.on_step(3)
    assert batch_indices(other.labelled_batch()[0]) != batch_indices(a.labelled_batch()[0])


def test_labelled_batches_cover_the_labelled_set_each_pass(smoke_specs):
    spec = make_spec(smoke_specs, "gan_fm", batch_size=10)
    model = build(spec, n_labelled=100)
    passes = []
    for p in range(3):
        seen = []
        for step in range(p * 10, (p + 1) * 10):
            model.on_step(step)
            x, y = model.labelled_batch()
            assert x.shape == (10, 3, 32, 32) and y.shape == (10,)
            assert x.dtype == torch.float32 and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
            idx = batch_indices(x)
            assert y.tolist() == [i % 10 for i in idx]  # labels travel with their images
            seen += idx
        assert sorted(seen) == list(range(100)), p  # every labelled example exactly once per pass
        passes.append(seen)
    assert passes[0] != passes[1] != passes[2]  # reshuffled each pass


def test_labelled_batch_size_follows_the_spec(smoke_specs):
    for bs in (4, 25):
        model = build(make_spec(smoke_specs, "gan_fm", batch_size=bs), n_labelled=100)
        for step in (0, 1, 17):
            model.on_step(step)
            assert model.labelled_batch()[0].shape[0] == bs


# ------------------------------------------------------------------------------------ Polyak
def avg_name(param: str) -> str:
    return "polyak__" + param.replace(".", "__")


@pytest.mark.parametrize("model_name,averaged", [("gan_fm", {"discriminator"}),
                                                  ("ali_kplus1", {"discriminator", "encoder"})])
def test_polyak_buffers_start_at_zero_and_cover_the_right_networks(smoke_specs, model_name, averaged):
    model = build(make_spec(smoke_specs, model_name))
    buffers = dict(model.named_buffers())
    state = model.state_dict()
    for name, p in model.named_parameters():
        top = name.split(".")[0]
        if top in averaged:
            buf = buffers[avg_name(name)]
            assert buf.shape == p.shape and not buf.any(), name  # improved-gan's disc_param_avg = 0 * p
            assert avg_name(name) in state, name  # checkpointed with the weights
        else:
            assert avg_name(name) not in buffers, name
    assert any(n.startswith("decoder.") for n, _ in model.named_parameters())  # the decoder is never averaged


@pytest.mark.parametrize("model_name", ["gan_fm", "ali_kplus1"])
def test_one_step_leaves_rate_times_the_new_weights(smoke_specs, model_name):
    spec = make_spec(smoke_specs, model_name, polyak_rate=0.25)
    model = build(spec)
    model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.on_step(0)
    model.train_step(unlabelled_batch(10))
    changed = 0
    for name, p in model._averaged_params():
        avg = getattr(model, avg_name(name))
        assert torch.allclose(avg, 0.25 * p.detach(), rtol=1e-6, atol=1e-9), name
        changed += not torch.equal(p.detach(), before[name])
    assert changed > 0  # the step moved the averaged weights, and the average followed the new ones


def substituted_copy(model, spec):
    """A fresh model with ``model``'s weights and buffers, its averaged parameters replaced by the averages."""
    twin = semisup.build(spec)
    twin.load_state_dict(model.state_dict())
    with torch.no_grad():
        for name, p in twin._averaged_params():
            p.copy_(getattr(model, avg_name(name)))
    return twin.eval()


@pytest.mark.parametrize("model_name,steps", [("gan_fm", 3), ("ali_kplus1", 2)])
def test_class_logits_use_the_polyak_weights(smoke_specs, model_name, steps):
    spec = make_spec(smoke_specs, model_name, polyak_rate=0.3)
    model = build(spec)
    model.train()
    for step in range(steps):
        model.on_step(step)
        model.train_step(unlabelled_batch(10, seed=step))
    model.eval()
    live = {n: p.detach().clone() for n, p in model.named_parameters()}
    x = unlabelled_batch(20, seed=7)
    avg_logits = model.class_logits(x)  # polyak=True is the default
    assert avg_logits.shape == (20, 10)
    assert torch.equal(avg_logits, model.class_logits(x, polyak=True))
    twin = substituted_copy(model, spec)
    assert torch.allclose(avg_logits, twin.class_logits(x, polyak=False), rtol=1e-5, atol=1e-6)
    last = model.class_logits(x, polyak=False)
    assert not torch.allclose(avg_logits, last, rtol=1e-3, atol=1e-4)
    # the live weights are untouched by the substitution
    assert all(torch.equal(p, live[n]) for n, p in model.named_parameters())
    # and test_error reports the averaged model's error
    images = (x * 255).round().to(torch.uint8).numpy()
    labels = np.arange(20) % 10
    assert semisup.test_error(model, images, labels, batch=7) == semisup.test_error(twin, images, labels,
                                                                                    polyak=False, batch=7)


# ------------------------------------------------------------------------------ model losses
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_gan_fm_losses_by_hand(smoke_specs, mode):
    """D: L_lab + w * L_unl; G: mean |mean_b f(x) - mean_b f(G(z))| over D's last hidden features.

    Recomputed with the same RNG state; in train mode (dropout, batch statistics) the D calls are
    repeated in the model's order (labelled, unlabelled, fake, then features of real and fake)."""
    w = 0.7
    spec = make_spec(smoke_specs, "gan_fm", unlabelled_weight=w)
    model = build(spec)
    assert isinstance(model, GANFeatureMatching) and isinstance(model, KPlus1Model)
    model.train(mode == "train")
    model.on_step(5)
    x = unlabelled_batch(10, seed=3)
    d, dec = model.discriminator, model.decoder
    with torch.no_grad():
        torch.manual_seed(42)
        loss_d, loss_g = model.losses(x)
        torch.manual_seed(42)
        x_lab, y_lab = model.labelled_batch()
        x_fake = dec(torch.randn(10, model.z_dim))
        lab, unl, fake = d(x_lab), d(x), d(x_fake)
        f_real, f_fake = d.features(x), d.features(x_fake)
    assert lab.shape == (10, 10) and f_real.shape[2:] == (1, 1)
    f_real, f_fake = f_real.flatten(1).double().numpy(), f_fake.flatten(1).double().numpy()
    expected_g = np.abs(f_real.mean(0) - f_fake.mean(0)).mean()
    expected_d = np_cross_entropy(lab.double().numpy(), y_lab.numpy()) + w * np_unlabelled_loss(
        unl.double().numpy(), fake.double().numpy())
    assert loss_g.item() == pytest.approx(expected_g, rel=1e-5, abs=1e-7)
    assert loss_d.item() == pytest.approx(expected_d, rel=1e-5, abs=1e-6)


def test_gan_fm_generator_gradient_reaches_only_through_generated_features(smoke_specs):
    model = build(make_spec(smoke_specs, "gan_fm"))
    model.train()
    model.on_step(0)
    _, loss_g = model.losses(unlabelled_batch(10))
    grads = torch.autograd.grad(loss_g, model.g_parameters(), allow_unused=True)
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert {id(p) for p in model.g_parameters()} == {id(p) for p in model.decoder.parameters()}


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_ali_kplus1_losses_by_hand(smoke_specs, mode):
    """D: L_lab on (x_lab, G_z(x_lab)), L_unl with q-pairs real and p-pairs fake; G: softplus(l_q) + softplus(-l_p)."""
    w = 0.6
    spec = make_spec(smoke_specs, "ali_kplus1", unlabelled_weight=w)
    model = build(spec)
    assert isinstance(model, ALIKPlus1)
    model.train(mode == "train")
    model.on_step(2)
    x = unlabelled_batch(10, seed=4)
    d, enc, dec = model.discriminator, model.encoder, model.decoder
    with torch.no_grad():
        torch.manual_seed(11)
        loss_d, loss_g = model.losses(x)
        torch.manual_seed(11)
        x_lab, y_lab = model.labelled_batch()
        z_lab, z_hat = enc(x_lab), enc(x)
        z = torch.randn(10, model.z_dim)
        x_tilde = dec(z)
        logits_q, logits_p = d(x, z_hat), d(x_tilde, z)
        logits_lab = d(x_lab, z_lab)
    assert logits_q.shape == (10, 10)
    q, p = logits_q.double().numpy(), logits_p.double().numpy()
    l_q, l_p = np_logsumexp(q), np_logsumexp(p)
    expected_g = np_softplus(l_q).mean() + np_softplus(-l_p).mean()
    expected_d = np_cross_entropy(logits_lab.double().numpy(), y_lab.numpy()) + w * np_unlabelled_loss(q, p)
    assert loss_g.item() == pytest.approx(expected_g, rel=1e-5, abs=1e-6)
    assert loss_d.item() == pytest.approx(expected_d, rel=1e-5, abs=1e-6)


def test_ali_kplus1_class_logits_pair_x_with_the_posterior_mean(smoke_specs):
    model = build(make_spec(smoke_specs, "ali_kplus1")).eval()
    x = unlabelled_batch(6, seed=9)
    with torch.no_grad():
        mu, _ = model.encoder.distribution(x)
        expected = model.discriminator(x, mu)
        torch.manual_seed(0)
        a = model.class_logits(x, polyak=False)
        torch.manual_seed(1)
        b = model.class_logits(x, polyak=False)
    assert torch.equal(a, b)  # deterministic: no sampled z at test time
    assert torch.allclose(a, expected, atol=1e-6)
