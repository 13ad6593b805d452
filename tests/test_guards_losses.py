"""The adversarial losses and the update, recomputed by hand from the networks (mixture models, small).

- ``model.losses(x)`` equals the hand computation on the same noise: for ALI, D on the q-pairs
  (x, G_z(x)) and p-pairs (G_x(z), z), the z of the p-pairs being the one the decoder received;
  L_D = mean softplus(-l_q) + mean softplus(l_p), L_G with the labels swapped; for the GAN the
  non-saturating L_G = mean softplus(-l_fake); post-hoc inference plays ALI's game with a frozen decoder.
  The noise is read off the networks' inputs (forward hooks), so the check does not depend on the order
  in which the model draws it.
- ``train_step`` (simultaneous, the released code's update) moves D along -grad L_D and the generators
  along -grad L_G, both taken at the parameters before the step: with plain SGD both moves are checked
  exactly against gradients computed by hand on a copy. An alternating update would give other
  generator weights, and the test checks that it can tell.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import SMOKE

from ali.config import load_config
from ali.experiments import mixture as mx

PLAN = mx.plan(load_config(SMOKE))
LR = 0.05
B = 64


def small_model(name: str, update: str = "simultaneous"):
    spec = copy.deepcopy(PLAN[f"fixed/{name}/run0"])
    spec["nets"].update(gen_hidden=16, disc_hidden=8)
    spec["update"] = update
    spec["init_std"] = 0.3  # large enough that logits and gradients are far from zero
    torch.manual_seed(0)
    return mx.build(spec).train()


def data() -> torch.Tensor:
    return torch.randn(B, 2, generator=torch.Generator().manual_seed(1)) * 2


class Taps:
    """Records the input and output of each network that ``losses`` calls."""

    def __init__(self, model):
        self.seen, self.hooks = {}, []
        for name in ("encoder", "decoder", "discriminator"):
            net = getattr(model, name, None)
            if net is not None:
                target = net.net if name != "decoder" else net  # the encoder's MLP sees concat(x, eps)
                self.hooks.append(target.register_forward_hook(self._record(name)))

    def _record(self, name):
        def hook(module, inputs, output):
            self.seen.setdefault(name, []).append((inputs[0].detach().clone(), output.detach().clone()))
        return hook

    def close(self):
        for h in self.hooks:
            h.remove()


def _run_with_taps(model, x):
    taps = Taps(model)
    torch.manual_seed(7)
    try:
        loss_d, loss_g = model.losses(x)
    finally:
        taps.close()
    return loss_d, loss_g, taps.seen


# ------------------------------------------------------------------------------------- the losses
@pytest.mark.parametrize("name", ["ali", "posthoc"])
def test_ali_game_losses_by_hand(name):
    model, x = small_model(name), data()
    hand = copy.deepcopy(model)  # same weights and BN state, before the model's pass
    loss_d, loss_g, seen = _run_with_taps(model, x)

    ((enc_in, _),), ((z, _),) = seen["encoder"], seen["decoder"]
    assert torch.equal(enc_in[:, :2], x) and enc_in.shape == (B, 4)  # concat(x, eps)
    assert z.shape == (B, 2)
    with torch.no_grad():
        z_hat = hand.encoder.net(enc_in)                 # G_z(x) with the model's eps
        x_tilde = hand.decoder(z)                        # G_x(z)
        l_q = hand.discriminator(x, z_hat)               # D(x, G_z(x))
        l_p = hand.discriminator(x_tilde, z)             # D(G_x(z), z): the decoder's own z
    # D saw exactly these pairs (in one call: q-pairs, then p-pairs)
    d_in = torch.cat([i for i, _ in seen["discriminator"]])
    torch.testing.assert_close(d_in, torch.cat([torch.cat([x, z_hat], 1), torch.cat([x_tilde, z], 1)]))

    want_d = F.softplus(-l_q).mean() + F.softplus(l_p).mean()
    want_g = F.softplus(l_q).mean() + F.softplus(-l_p).mean()  # the same pairs, labels swapped
    torch.testing.assert_close(loss_d.detach(), want_d, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(loss_g.detach(), want_g, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(want_g, -want_d)  # non-saturating, not the minimax -L_D
    if name == "posthoc":
        assert not model.decoder.training and not any(p.requires_grad for p in model.decoder.parameters())


def test_gan_losses_by_hand():
    model, x = small_model("gan"), data()
    hand = copy.deepcopy(model)
    loss_d, loss_g, seen = _run_with_taps(model, x)
    ((z, _),) = seen["decoder"]
    with torch.no_grad():
        x_fake = hand.decoder(z)
        l_real, l_fake = hand.discriminator(x), hand.discriminator(x_fake)
    d_in = torch.cat([i for i, _ in seen["discriminator"]])
    torch.testing.assert_close(d_in, torch.cat([x, x_fake]))
    torch.testing.assert_close(loss_d.detach(), F.softplus(-l_real).mean() + F.softplus(l_fake).mean(),
                               rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(loss_g.detach(), F.softplus(-l_fake).mean(), rtol=1e-6, atol=1e-7)  # -log D(G(z))


# -------------------------------------------------------------------------------------- the update
def _sgd(model) -> None:
    model.optimizers = {"d": torch.optim.SGD(model.d_parameters(), lr=LR),
                        "g": torch.optim.SGD(model.g_parameters(), lr=LR)}


def _hand_step(hand, x, alternating: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """D's and G's parameters after one SGD step computed by hand (same noise as the model's step)."""
    d_params, g_params = hand.d_parameters(), hand.g_parameters()
    torch.manual_seed(11)
    loss_d, loss_g = hand.losses(x)
    grads_d = torch.autograd.grad(loss_d, d_params, retain_graph=True)
    new_d = [p.detach() - LR * g for p, g in zip(d_params, grads_d)]
    if alternating:  # G's gradient after D has moved, on the same noise
        with torch.no_grad():
            for p, v in zip(d_params, new_d):
                p.copy_(v)
        torch.manual_seed(11)
        _, loss_g = hand.losses(x)
    grads_g = torch.autograd.grad(loss_g, g_params)
    return new_d, [p.detach() - LR * g for p, g in zip(g_params, grads_g)]


@pytest.mark.parametrize("name", ["ali", "gan", "posthoc"])
def test_simultaneous_step_moves_d_and_g_along_their_gradients_at_the_same_point(name):
    model, x = small_model(name), data()
    _sgd(model)
    hand_simul, hand_alt = copy.deepcopy(model), copy.deepcopy(model)
    frozen = {k: v.clone() for k, v in model.decoder.state_dict().items()} if name == "posthoc" else None

    torch.manual_seed(11)
    out = model.train_step(x)
    assert set(out) == {"loss_d", "loss_g"}

    want_d, want_g = _hand_step(hand_simul, x, alternating=False)
    for p, w in zip(model.d_parameters(), want_d):
        torch.testing.assert_close(p.detach(), w, rtol=1e-6, atol=1e-7)
    for p, w in zip(model.g_parameters(), want_g):
        torch.testing.assert_close(p.detach(), w, rtol=1e-6, atol=1e-7)
    assert any(not torch.equal(p.detach(), q.detach()) for p, q in zip(model.d_parameters(), hand_alt.d_parameters()))

    # the test can tell: an alternating step would have moved G elsewhere
    _, alt_g = _hand_step(hand_alt, x, alternating=True)
    gap = max(float((a - w).abs().max()) for a, w in zip(alt_g, want_g))
    assert gap > 1e-4, gap
    if frozen is not None:  # post-hoc inference never moves the GAN's decoder
        assert all(torch.equal(v, model.decoder.state_dict()[k]) for k, v in frozen.items())
