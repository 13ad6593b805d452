"""Where the released image scripts differ from the appendix tables (``ali.nets.architectures`` options).

Expected values are written out by hand from the released scripts of github.com/IshmaelBelghazi/ALI
(``experiments/ali_{cifar10,celeba,tiny_imagenet}.py``) and Blocks' history:
- CIFAR10 D(x) is built without ``use_bias=False``: every convolution has a bias; Blocks'
  ``Convolutional(tied_biases=False)`` was the default until 2016-06-03, so one bias per channel and
  output pixel (sizes 28, 13, 10, 4, 1). ``tied``: one per channel; ``first_layer``: the first commit.
- CIFAR10 D(x) dropout: ``layers[0]`` 0.2, ``layers[2::3]`` 0.5 on [c1, m1, c2, m2, c3, m3, c4, m4, c5, m5]
  = c2, m3, c5: inputs of rows 2 and 5, and row 3's convolution output before its maxout.
- CelebA D(x): row 1 has no BN and a tied bias; ``layers[0] + layers[2::3]`` = every convolution, 0.2.
- Tiny ImageNet D(z): built without ``use_bias=False`` (biases); NUM_EPOCHS = 1000 against Table 6's 125.
"""

from __future__ import annotations

import pytest
import torch
from conftest import stack_rows
from torch import nn

from ali.nets import architectures
from ali.nets.conv import ChannelMaxout, JointConvDiscriminator, Stack, UntiedBias

CIFAR_DX_MAPS, CIFAR_DX_SIZES = (32, 64, 128, 256, 512), (28, 13, 10, 4, 1)


def _dx(name: str, **options) -> Stack:
    return JointConvDiscriminator(architectures.architecture(name, options)).dx


def _conv_biases(stack: Stack) -> list[tuple[tuple[int, ...] | None, tuple[int, ...] | None]]:
    """Per row: (the convolution's own bias shape or None, the untied bias's shape or None)."""
    out = []
    for row in stack_rows(stack):
        conv = next(m for m in row if isinstance(m, nn.Conv2d))
        untied = [m for m in row if isinstance(m, UntiedBias)]
        out.append((None if conv.bias is None else tuple(conv.bias.shape),
                    tuple(untied[0].bias.shape) if untied else None))
    return out


# ------------------------------------------------------------------------------------- CIFAR10 biases
def test_cifar10_dx_default_has_an_untied_bias_on_every_convolution():
    assert dict(architectures.CIFAR10.options)["dx_bias"] == "untied"
    expected = [(None, (c, s, s)) for c, s in zip(CIFAR_DX_MAPS, CIFAR_DX_SIZES)]
    assert _conv_biases(_dx("cifar10")) == expected
    # one bias per channel and pixel: 32*28*28 + 64*13*13 + 128*10*10 + 256*4*4 + 512*1*1
    n_bias = sum(p.numel() for n, p in _dx("cifar10").named_parameters() if n.endswith("bias"))
    assert n_bias == 25088 + 10816 + 12800 + 4096 + 512


def test_cifar10_dx_tied_and_first_layer_variants():
    assert _conv_biases(_dx("cifar10", dx_bias="tied")) == [((c,), None) for c in CIFAR_DX_MAPS]
    assert _conv_biases(_dx("cifar10", dx_bias="first_layer")) == [((32,), None)] + [(None, None)] * 4


def test_untied_bias_adds_per_pixel_and_starts_at_zero():
    dx = _dx("cifar10").eval()
    ub = next(m for m in dx if isinstance(m, UntiedBias))
    assert torch.count_nonzero(ub.bias) == 0
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        before = dx.preactivations(x)[0]
        ub.bias[5, 3, 7] = 2.0
        after = dx.preactivations(x)[0]
    diff = after - before
    assert torch.allclose(diff[:, 5, 3, 7], torch.full((2,), 2.0))
    diff[:, 5, 3, 7] = 0
    assert torch.count_nonzero(diff) == 0  # exactly one channel-pixel moved


def test_cifar10_other_stacks_keep_their_biases():
    d = JointConvDiscriminator(architectures.CIFAR10)
    assert all(m.bias is None for m in d.dz if isinstance(m, nn.Conv2d))  # use_bias=False in the script
    assert all(m.bias is not None for m in d.joint if isinstance(m, nn.Conv2d))
    gan = JointConvDiscriminator(architectures.CIFAR10, joint=False)  # the GAN's D(x) is the same stack
    assert _conv_biases(gan.dx) == _conv_biases(d.dx)


# ------------------------------------------------------------------------------------ CIFAR10 dropout
def _dropout_layout(stack: Stack) -> list[tuple[float, float]]:
    """Per row: (dropout on the row's input, dropout just before its nonlinearity)."""
    layout = []
    for row in stack_rows(stack):
        first = row[0].p if isinstance(row[0], nn.Dropout) else 0.0
        act = next(i for i, m in enumerate(row) if isinstance(m, (ChannelMaxout, nn.LeakyReLU)))
        before = row[act - 1].p if isinstance(row[act - 1], nn.Dropout) else 0.0
        assert sum(isinstance(m, nn.Dropout) for m in row) == (first > 0) + (before > 0)
        layout.append((first, before))
    return layout


def test_cifar10_dx_dropout_released_lands_where_the_script_puts_it():
    assert dict(architectures.CIFAR10.options)["dx_dropout"] == "released"
    assert _dropout_layout(_dx("cifar10")) == [(0.2, 0.0), (0.5, 0.0), (0.0, 0.5), (0.0, 0.0), (0.5, 0.0)]
    row3 = stack_rows(_dx("cifar10"))[2]  # conv -> untied bias -> dropout -> maxout
    assert [type(m) for m in row3] == [nn.Conv2d, UntiedBias, nn.Dropout, ChannelMaxout]


def test_cifar10_dx_dropout_table_is_table_3():
    assert _dropout_layout(_dx("cifar10", dx_dropout="table")) == [(0.2, 0.0)] + [(0.5, 0.0)] * 4


def test_cifar10_released_dropout_keeps_z_and_joint_dropout():
    d = JointConvDiscriminator(architectures.CIFAR10)
    assert [m.p for m in d.dz if isinstance(m, nn.Dropout)] == [0.2, 0.5]
    assert [m.p for m in d.joint if isinstance(m, nn.Dropout)] == [0.5, 0.5, 0.5]


def test_preactivations_are_read_before_the_dropout_on_the_nonlinearity_input():
    """The feature probes read row 3's convolution output itself, not its dropped-out copy."""
    dx = _dx("cifar10")
    mods = list(dx)
    assert isinstance(mods[dx.preact_ends[2]], nn.Dropout)  # recorded just before the dropout module
    assert isinstance(mods[dx.preact_ends[2] - 1], UntiedBias)
    dx.train()
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        torch.manual_seed(0)
        pre = dx.preactivations(x)[2]
        torch.manual_seed(0)  # the same input-dropout masks of rows 1-2, then stop before row 3's dropout
        h = x
        for m in mods[:dx.preact_ends[2]]:
            h = m(h)
    assert torch.equal(pre, h)


# ------------------------------------------------------------------------------------------- CelebA
def test_celeba_dx_released_has_no_bn_on_row_1_and_dropout_everywhere():
    assert dict(architectures.CELEBA.options)["dx"] == "released"
    dx = _dx("celeba")
    rows = stack_rows(dx)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in rows[0])
    assert all(any(isinstance(m, nn.BatchNorm2d) for m in row) for row in rows[1:])
    assert _conv_biases(dx) == [((64,), None)] + [(None, None)] * 4
    assert _dropout_layout(dx) == [(0.2, 0.0)] * 5


def test_celeba_dx_table_is_table_5():
    dx = _dx("celeba", dx="table")
    assert all(any(isinstance(m, nn.BatchNorm2d) for m in row) for row in stack_rows(dx))
    assert _conv_biases(dx) == [(None, None)] * 5
    assert not any(isinstance(m, nn.Dropout) for m in dx)


# ------------------------------------------------------------------------------------ Tiny ImageNet
def test_tiny_imagenet_dz_bias_and_epochs():
    s = architectures.TINY_IMAGENET
    assert dict(s.options) == {"dz_bias": "released", "epochs": "table"}
    assert s.epochs == 125
    d = JointConvDiscriminator(s)
    assert [tuple(m.bias.shape) for m in d.dz if isinstance(m, nn.Conv2d)] == [(2048,), (2048,)]
    none = JointConvDiscriminator(architectures.architecture("tiny_imagenet", {"dz_bias": "none"}))
    assert all(m.bias is None for m in none.dz if isinstance(m, nn.Conv2d))
    assert architectures.architecture("tiny_imagenet", {"epochs": "released"}).epochs == 1000


# --------------------------------------------------------------------------------------- the options
def test_svhn_has_no_options_and_agrees_with_its_table():
    assert architectures.SVHN.options == () and architectures.SVHN.release_notes == ()
    assert architectures.OPTIONS["svhn"] == ()


@pytest.mark.parametrize("name", ["cifar10", "svhn", "celeba", "tiny_imagenet"])
def test_specs_are_the_defaults_with_one_note_per_option(name):
    spec = architectures.ARCHITECTURES[name]
    assert spec == architectures.architecture(name)
    opts = architectures.OPTIONS[name]
    assert spec.options == tuple((o.name, o.default) for o in opts)
    assert spec.release_notes == tuple(o.choices[o.default].note for o in opts)
    assert architectures.arch_notes(spec) == spec.notes + spec.release_notes
    for opt in opts:
        assert opt.default in opt.choices and (opt.table is None or opt.table in opt.choices)
        for value, choice in opt.choices.items():
            label = choice.note.rsplit("[", 1)[1]
            # every note ends by saying whose choice it is
            assert label.startswith(("released code", "our choice", "deviation")), (name, opt.name, value)


def test_default_notes_say_released_code_except_tiny_imagenet_epochs():
    for name, opts in architectures.OPTIONS.items():
        for opt in opts:
            note = opt.choices[opt.default].note
            if (name, opt.name) == ("tiny_imagenet", "epochs"):
                assert "[our choice" in note and "1000" in note
            else:
                assert "[released code" in note, (name, opt.name)


def test_table_options():
    assert architectures.table_options("cifar10") == {"dx_dropout": "table"}
    assert architectures.table_options("celeba") == {"dx": "table"}
    assert architectures.table_options("tiny_imagenet") == {"epochs": "table"}
    assert architectures.table_options("svhn") == {}


def test_bad_options_raise_naming_the_fix():
    with pytest.raises(ValueError, match=r"unknown architecture 'mnist'.*'cifar10'"):
        architectures.architecture("mnist")
    with pytest.raises(ValueError, match=r"architecture 'svhn' has no option \['dx_bias'\].*none"):
        architectures.architecture("svhn", {"dx_bias": "tied"})
    with pytest.raises(ValueError, match=r"option 'dx_bias' of architecture 'cifar10' must be one of "
                                         r"\['untied', 'tied', 'first_layer'\], got 'per_pixel'"):
        architectures.architecture("cifar10", {"dx_bias": "per_pixel"})


def test_module_constants_are_the_registry_entries():
    assert architectures.CIFAR10 is architectures.ARCHITECTURES["cifar10"] and architectures.SVHN is architectures.ARCHITECTURES["svhn"]
    assert architectures.CELEBA is architectures.ARCHITECTURES["celeba"] and architectures.TINY_IMAGENET is architectures.ARCHITECTURES["tiny_imagenet"]
