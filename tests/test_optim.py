"""Adam and the Blocks -> PyTorch beta conversion (which must happen exactly once)."""

from __future__ import annotations

import pytest
import torch

from ali.config import PRESET_DIR, load_config
from ali.experiments.mixture import build, plan
from ali.optim import AdamConfig, make_adam, torch_betas


@pytest.mark.parametrize("blocks, expected", [((0.8, 0.001), (0.2, 0.999)), ((0.5, 0.001), (0.5, 0.999)),
                                              ((0.1, 0.0001), (0.9, 0.9999))])
def test_blocks_betas_are_one_minus(blocks, expected):
    """Blocks' (1 - beta) parameterisation: beta1 0.8 -> 0.2, beta2 0.001 -> 0.999."""
    assert torch_betas(*blocks, "blocks") == pytest.approx(expected, abs=1e-12)


def test_torch_convention_is_identity():
    """Betas already in PyTorch's convention pass through unchanged."""
    assert torch_betas(0.2, 0.999, "torch") == (0.2, 0.999)
    assert torch_betas(0.0, 0.0, "torch") == (0.0, 0.0)


def test_blocks_beta_one_is_allowed():
    """Blocks' beta 1.0 (no averaging) is PyTorch's 0.0, a valid value."""
    assert torch_betas(1.0, 0.001, "blocks") == pytest.approx((0.0, 0.999))


@pytest.mark.parametrize("convention", ["Blocks", "pytorch", "", "theano"])
def test_unknown_convention_raises(convention):
    """A convention other than 'torch' / 'blocks' is rejected, not silently treated as one."""
    with pytest.raises(ValueError, match="convention"):
        torch_betas(0.5, 0.999, convention)


@pytest.mark.parametrize("b1, b2, convention", [(-0.1, 0.999, "torch"), (0.5, 1.0, "torch"), (1.5, 0.9, "torch"),
                                                (0.5, -0.001, "blocks"), (1.2, 0.001, "blocks")])
def test_out_of_range_betas_raise(b1, b2, convention):
    """Betas outside [0, 1) (or [0, 1] for Blocks) are rejected with a message naming the beta."""
    with pytest.raises(ValueError, match="beta"):
        torch_betas(b1, b2, convention)


def test_blocks_beta_zero_is_rejected_early():
    """Blocks beta 0 means PyTorch beta 1.0, outside [0, 1): the conversion should reject it up front."""
    with pytest.raises(ValueError):
        torch_betas(0.0, 0.001, "blocks")


def test_blocks_beta_zero_is_rejected_before_torch_sees_it():
    """make_adam fails in our conversion, with the convention named, not deep inside torch's Adam."""
    cfg = AdamConfig(lr=1e-4, beta1=0.0, beta2=0.001, convention="blocks")
    with pytest.raises(ValueError, match="blocks convention"):
        make_adam([torch.nn.Parameter(torch.zeros(2))], cfg)


def test_make_adam_carries_converted_betas():
    """make_adam builds torch.optim.Adam with lr and the PyTorch-convention betas."""
    params = [torch.nn.Parameter(torch.zeros(3))]
    opt = make_adam(params, AdamConfig(lr=3e-4, beta1=0.8, beta2=0.001, convention="blocks"))
    assert isinstance(opt, torch.optim.Adam)
    (group,) = opt.param_groups
    assert group["lr"] == 3e-4
    assert group["betas"] == pytest.approx((0.2, 0.999))
    assert group["eps"] == 1e-8
    assert group["params"][0] is params[0]


def test_adam_config_torch_betas():
    """AdamConfig converts via its convention field, defaulting to 'torch'."""
    assert AdamConfig(1e-3, 0.5, 0.999).torch_betas() == (0.5, 0.999)
    assert AdamConfig(1e-3, 0.8, 0.001, "blocks").torch_betas() == pytest.approx((0.2, 0.999))


@pytest.fixture(scope="module")
def paper_plan():
    return plan(load_config(PRESET_DIR / "paper.yaml"))


def test_fixed_protocol_plans_blocks_betas_once(paper_plan):
    """The fixed protocol's spec records Blocks' (0.8, 0.001), which converts to (0.2, 0.999)."""
    spec = paper_plan["fixed/ali/run0"]
    assert spec["adam"]["lr"] == pytest.approx(1e-4)
    adam = AdamConfig(**spec["adam"])
    assert adam.torch_betas() == pytest.approx((0.2, 0.999))  # a double conversion would give (0.8, 0.001)


@pytest.mark.parametrize("key", ["fixed/ali/run0", "fixed/gan/run3", "fixed/vae/run0", "random/inverse/run0"])
def test_built_optimisers_use_pytorch_betas(paper_plan, key):
    """The optimisers that train a fixed-protocol run (or a baseline) hold betas (0.2, 0.999), lr 1e-4."""
    model = build(paper_plan[key])
    assert model.optimizers
    for opt in model.optimizers.values():
        for group in opt.param_groups:
            assert group["lr"] == pytest.approx(1e-4)
            assert group["betas"] == pytest.approx((0.2, 0.999))


def test_random_protocol_betas_are_not_converted(paper_plan):
    """Random-protocol betas are drawn in PyTorch's convention and reach Adam unchanged."""
    spec = paper_plan["random/gan/run2"]
    assert spec["adam"]["convention"] == "torch"
    model = build(spec)
    group = model.optimizers["g"].param_groups[0]
    assert group["betas"] == pytest.approx((spec["adam"]["beta1"], 0.999))
    assert group["lr"] == pytest.approx(spec["adam"]["lr"])
