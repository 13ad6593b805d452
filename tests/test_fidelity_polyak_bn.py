"""BN statistics re-estimated under the Polyak-averaged weights (``ali.eval.polyak_bn``).

The K+1 model is the semisup experiment's own build (Table 4's SVHN architecture: BN in D(x) rows 2-5
and in every encoder layer but the last), on digits-sized random images. Its Polyak averages are set
to the parameters plus noise, so the averaged weights differ from the current ones, and its running
statistics to values that are not those of the averaged weights. The re-estimation must change the BN
statistics of the averaged networks, to exactly the cumulative average of the batch statistics of a
hand pass, and nothing else: every parameter, every other buffer, and the trained model itself.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ali.eval.polyak_bn import averaged_copy, batchnorms, polyak_bn_model, reestimate_bn, training_batches
from ali.experiments import semisup
from ali.models.kplus1 import _avg_name

BATCH, N_BATCHES = 8, 3


def _spec(model: str) -> dict:
    return {"model": model, "arch": "svhn", "update": "alternating", "n_classes": 10, "batch_size": BATCH,
            "seed": 0, "unlabelled_weight": 1.0, "polyak_rate": 0.1, "steps_per_epoch": 10, "epochs": 1,
            "decay_epochs": 0, "init_std": 0.02,
            "adam": {"lr": 3e-4, "beta1": 0.5, "beta2": 0.999, "convention": "torch"}}


def _trained_looking(model_name: str) -> nn.Module:
    """A K+1 model whose Polyak averages differ from its weights and whose BN stats are arbitrary."""
    torch.manual_seed(0)
    model = semisup.build(_spec(model_name))
    with torch.no_grad():
        for name, p in model._averaged_params():
            getattr(model, _avg_name(name)).copy_(p + 0.05 * torch.randn_like(p))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(1234)
    return model.eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (BATCH * N_BATCHES + 5, 3, 32, 32), dtype=torch.uint8, generator=g)


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("model_name", ["ali_kplus1", "gan_fm"])
def test_reestimation_changes_the_bn_statistics_and_nothing_else(model_name, images):
    model = _trained_looking(model_name)
    before = _snapshot(model)
    twin = polyak_bn_model(model, images, BATCH, seed=3)

    # the trained model is untouched: every parameter and buffer, and its eval mode
    after = model.state_dict()
    assert set(after) == set(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert not model.training and model.optimizers  # its optimisers are still there

    # the copy: averaged networks hold the averages, the rest is the model's
    averaged = {name for name, _ in model._averaged_params()}
    params = dict(twin.named_parameters())
    for name, p in params.items():
        expected = before[_avg_name(name)] if name in averaged else before[name]
        assert torch.equal(p, expected), name
    assert any(not torch.equal(params[n], before[n]) for n in averaged)  # the averages are not the weights

    # BN statistics: changed exactly where the averaged networks have BN, nowhere else
    reestimated = {f"{owner}.{name}" for owner in twin.averaged
                   for name, m in getattr(twin, owner).named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert reestimated, "the test needs BN layers in the averaged networks"
    stats = ("running_mean", "running_var", "num_batches_tracked")
    buffers = dict(twin.named_buffers())
    assert set(buffers) | set(params) == set(before)  # nothing added or lost
    for key, value in buffers.items():
        owner, _, leaf = key.rpartition(".")
        if owner in reestimated and leaf in stats:
            assert not torch.equal(value, before[key]), key
            if leaf == "num_batches_tracked":
                assert int(value) == N_BATCHES  # full batches only: the 5 leftover images are not used
        else:
            assert torch.equal(value, before[key]), key
    if model_name == "gan_fm":  # the decoder is not on the test path: its statistics stay the trained ones
        assert not any(k.startswith("decoder") for k in reestimated)

    # ready to evaluate: eval mode, momentum back to the trained convention
    assert not any(m.training for m in twin.modules())
    assert {m.momentum for m in twin.modules() if isinstance(m, nn.BatchNorm2d)} == {0.05}
    assert not twin.optimizers


def test_statistics_are_the_cumulative_average_of_a_hand_pass(images):
    model = _trained_looking("ali_kplus1")
    twin = polyak_bn_model(model, images, BATCH, seed=3)

    hand = averaged_copy(model).train()
    layers = batchnorms([getattr(hand, n) for n in hand.averaged])
    seen: dict[str, list[torch.Tensor]] = {name: [] for name, _ in layers}
    hooks = [m.register_forward_pre_hook(lambda mod, inp, name=name: seen[name].append(inp[0].detach().clone()))
             for name, m in layers]
    torch.manual_seed(3)  # the same dropout masks as the re-estimation pass
    with torch.no_grad():
        for i in range(N_BATCHES):
            hand(images[i * BATCH:(i + 1) * BATCH].float() / 255.0)
    for h in hooks:
        h.remove()

    twin_layers = dict(batchnorms([getattr(twin, n) for n in twin.averaged]))
    for name, inputs in seen.items():
        assert len(inputs) == N_BATCHES
        means = torch.stack([x.mean(dim=(0, 2, 3)) for x in inputs])
        variances = torch.stack([x.var(dim=(0, 2, 3), unbiased=True) for x in inputs])
        bn = twin_layers[name]
        torch.testing.assert_close(bn.running_mean, means.mean(0), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(bn.running_var, variances.mean(0), rtol=1e-4, atol=1e-6)


def test_reestimation_is_reproducible_and_leaves_the_global_rng_alone(images):
    model = _trained_looking("ali_kplus1")
    torch.manual_seed(42)
    expected_next = torch.rand(3)
    torch.manual_seed(42)
    a = polyak_bn_model(model, images, BATCH, seed=3)
    assert torch.equal(torch.rand(3), expected_next)
    b = polyak_bn_model(model, images, BATCH, seed=3)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_reestimated_model_classifies_differently_from_current_statistics(images):
    model = _trained_looking("ali_kplus1")
    twin = polyak_bn_model(model, images, BATCH, seed=3)
    x = images[:BATCH].float() / 255.0
    current = model.class_logits(x, polyak=True)  # averages with the current weights' BN statistics
    fixed = twin.class_logits(x, polyak=False)    # averages with their own BN statistics
    assert current.shape == fixed.shape == (BATCH, 10)
    assert not torch.allclose(current, fixed)
    torch.testing.assert_close(twin.class_logits(x, polyak=True), fixed)  # the copy's averages are its weights


def test_a_bn_layer_the_forward_pass_never_reaches_is_an_error(images):
    model = _trained_looking("gan_fm")
    with pytest.raises(ValueError, match="not reached by model"):
        reestimate_bn(model, training_batches(images, BATCH, "cpu", max_batches=1), modules=[model.decoder])
    with pytest.raises(ValueError, match="saw 0 batches"):
        reestimate_bn(model, iter(()), modules=[model.discriminator])
