"""The image architectures (``ali.nets.architectures`` + ``ali.nets.conv``) against the paper's appendix.

Everything expected here is written out by hand from ``shared/paper/appendix_tables.md``
(Tables 3-6, with the BN column) and the conventions in ``ali/nets/architectures.py``'s docstring (taken
from the released code). The networks are built with every release-vs-table option at the table's
value (``architectures.table_options``); the released variants are tested in tests/test_fidelity_architectures.py.
No padding; dropout on a layer's input; no bias on a layer followed by BN;
a tied bias on the encoder's output, on the x-discriminator's first layer (when it has no BN) and on
every joint-discriminator layer; CIFAR10's D(x): an untied bias on every layer (released script,
Blocks' default of its date); none in the z-discriminator except Tiny ImageNet's (tied, released
script); an untied bias (one per channel and pixel) on the decoder's output; maxout (CIFAR10's D, 2 pieces, consecutive channels) halving the
channels seen by the next layer, so CIFAR10's joint D sees 256 + 256 = 512 channels.

Spatial arithmetic, no padding: conv out = (in - k) // s + 1; transposed conv out = (in - 1) * s + k.
Parameters: conv weights k*k*in*out (+ out for a tied bias, + out*H*W for the untied bias), BN 2*out
(running statistics are buffers, not parameters).
"""

from __future__ import annotations


import pytest
import torch
from conftest import n_params, stack_rows
from torch import nn

from ali.nets import architectures
from ali.nets.conv import (ChannelMaxout, ConvDecoder, ConvEncoder, JointConvDiscriminator, Stack,
                           UntiedBias)

NAMES = ("cifar10", "svhn", "celeba", "tiny_imagenet")
B = 2


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- The tables, transcribed literally ------------------------------------------------------------
# (op, kernel, stride, feature maps, BN, dropout, nonlinearity); 'C' conv, 'T' transposed conv;
# 'L' leaky ReLU, 'M' maxout, 'lin' linear, 'sig' sigmoid (D's final sigmoid is kept in the loss).
Y, N_ = True, False
ENC_32 = lambda last: [("C", 5, 1, 32, Y, 0.0, "L"), ("C", 4, 2, 64, Y, 0.0, "L"),  # noqa: E731
                       ("C", 4, 1, 128, Y, 0.0, "L"), ("C", 4, 2, 256, Y, 0.0, "L"),
                       ("C", 4, 1, 512, Y, 0.0, "L"), ("C", 1, 1, 512, Y, 0.0, "L"),
                       ("C", 1, 1, last, N_, 0.0, "lin")]
DEC_32 = [("T", 4, 1, 256, Y, 0.0, "L"), ("T", 4, 2, 128, Y, 0.0, "L"), ("T", 4, 1, 64, Y, 0.0, "L"),
          ("T", 4, 2, 32, Y, 0.0, "L"), ("T", 5, 1, 32, Y, 0.0, "L"), ("C", 1, 1, 32, Y, 0.0, "L"),
          ("C", 1, 1, 3, N_, 0.0, "sig")]
TABLES = {
    "cifar10": {  # Table 3
        "encoder": ENC_32(128),
        "decoder": DEC_32,
        "disc_x": [("C", 5, 1, 32, N_, 0.2, "M"), ("C", 4, 2, 64, N_, 0.5, "M"), ("C", 4, 1, 128, N_, 0.5, "M"),
                   ("C", 4, 2, 256, N_, 0.5, "M"), ("C", 4, 1, 512, N_, 0.5, "M")],
        "disc_z": [("C", 1, 1, 512, N_, 0.2, "M"), ("C", 1, 1, 512, N_, 0.5, "M")],
        "disc_joint": [("C", 1, 1, 1024, N_, 0.5, "M"), ("C", 1, 1, 1024, N_, 0.5, "M"),
                       ("C", 1, 1, 1, N_, 0.5, "lin")],
    },
    "svhn": {  # Table 4
        "encoder": ENC_32(512),
        "decoder": DEC_32,
        "disc_x": [("C", 5, 1, 32, N_, 0.2, "L"), ("C", 4, 2, 64, Y, 0.2, "L"), ("C", 4, 1, 128, Y, 0.2, "L"),
                   ("C", 4, 2, 256, Y, 0.2, "L"), ("C", 4, 1, 512, Y, 0.2, "L")],
        "disc_z": [("C", 1, 1, 512, N_, 0.2, "L"), ("C", 1, 1, 512, N_, 0.2, "L")],
        "disc_joint": [("C", 1, 1, 1024, N_, 0.2, "L"), ("C", 1, 1, 1024, N_, 0.2, "L"),
                       ("C", 1, 1, 1, N_, 0.2, "lin")],
    },
    "celeba": {  # Table 5
        "encoder": [("C", 2, 1, 64, Y, 0.0, "L"), ("C", 7, 2, 128, Y, 0.0, "L"), ("C", 5, 2, 256, Y, 0.0, "L"),
                    ("C", 7, 2, 256, Y, 0.0, "L"), ("C", 4, 1, 512, Y, 0.0, "L"), ("C", 1, 1, 512, N_, 0.0, "lin")],
        "decoder": [("T", 4, 1, 512, Y, 0.0, "L"), ("T", 7, 2, 256, Y, 0.0, "L"), ("T", 5, 2, 256, Y, 0.0, "L"),
                    ("T", 7, 2, 128, Y, 0.0, "L"), ("T", 2, 1, 64, Y, 0.0, "L"), ("C", 1, 1, 3, N_, 0.0, "sig")],
        "disc_x": [("C", 2, 1, 64, Y, 0.0, "L"), ("C", 7, 2, 128, Y, 0.0, "L"), ("C", 5, 2, 256, Y, 0.0, "L"),
                   ("C", 7, 2, 256, Y, 0.0, "L"), ("C", 4, 1, 512, Y, 0.0, "L")],
        "disc_z": [("C", 1, 1, 1024, N_, 0.2, "L"), ("C", 1, 1, 1024, N_, 0.2, "L")],
        "disc_joint": [("C", 1, 1, 2048, N_, 0.2, "L"), ("C", 1, 1, 2048, N_, 0.2, "L"),
                       ("C", 1, 1, 1, N_, 0.2, "lin")],
    },
    "tiny_imagenet": {  # Table 6
        "encoder": [("C", 4, 2, 64, Y, 0.0, "L"), ("C", 4, 1, 64, Y, 0.0, "L"), ("C", 4, 2, 128, Y, 0.0, "L"),
                    ("C", 4, 1, 128, Y, 0.0, "L"), ("C", 4, 2, 256, Y, 0.0, "L"), ("C", 4, 1, 256, Y, 0.0, "L"),
                    ("C", 1, 1, 2048, Y, 0.0, "L"), ("C", 1, 1, 2048, Y, 0.0, "L"),
                    ("C", 1, 1, 512, N_, 0.0, "lin")],
        "decoder": [("C", 1, 1, 2048, Y, 0.0, "L"), ("C", 1, 1, 256, Y, 0.0, "L"), ("T", 4, 1, 256, Y, 0.0, "L"),
                    ("T", 4, 2, 128, Y, 0.0, "L"), ("T", 4, 1, 128, Y, 0.0, "L"), ("T", 4, 2, 64, Y, 0.0, "L"),
                    ("T", 4, 1, 64, Y, 0.0, "L"), ("T", 4, 2, 64, Y, 0.0, "L"), ("C", 1, 1, 3, N_, 0.0, "sig")],
        "disc_x": [("C", 4, 2, 64, N_, 0.2, "L"), ("C", 4, 1, 64, Y, 0.2, "L"), ("C", 4, 2, 128, Y, 0.2, "L"),
                   ("C", 4, 1, 128, Y, 0.2, "L"), ("C", 4, 2, 256, Y, 0.2, "L"), ("C", 4, 1, 256, Y, 0.2, "L")],
        "disc_z": [("C", 1, 1, 2048, N_, 0.2, "L"), ("C", 1, 1, 2048, N_, 0.2, "L")],
        "disc_joint": [("C", 1, 1, 4096, N_, 0.2, "L"), ("C", 1, 1, 4096, N_, 0.2, "L"),
                       ("C", 1, 1, 1, N_, 0.2, "lin")],
    },
}
PARTS = ("encoder", "decoder", "disc_x", "disc_z", "disc_joint")
LEAK = {"cifar10": 0.1, "svhn": 0.01, "celeba": 0.02, "tiny_imagenet": 0.01}
Z_DIM = {"cifar10": 64, "svhn": 256, "celeba": 256, "tiny_imagenet": 256}
IMAGE = {"cifar10": 32, "svhn": 32, "celeba": 64, "tiny_imagenet": 64}

# --- Spatial sizes per layer, by hand ---------------------------------------------------------------
SIZES = {
    "cifar10": {
        # 32 -> (32-5)/1+1 = 28 -> (28-4)//2+1 = 13 -> (13-4)+1 = 10 -> (10-4)//2+1 = 4 -> (4-4)+1 = 1 -> 1 -> 1
        "encoder": [28, 13, 10, 4, 1, 1, 1],
        # 1 -> (1-1)*1+4 = 4 -> (4-1)*2+4 = 10 -> (10-1)*1+4 = 13 -> (13-1)*2+4 = 28 -> (28-1)*1+5 = 32 -> 32 -> 32
        "decoder": [4, 10, 13, 28, 32, 32, 32],
        "disc_x": [28, 13, 10, 4, 1],  # as the encoder's first five layers
        "disc_z": [1, 1],
        "disc_joint": [1, 1, 1],
    },
    "celeba": {
        # 64 -> (64-2)+1 = 63 -> (63-7)//2+1 = 29 -> (29-5)//2+1 = 13 -> (13-7)//2+1 = 4 -> (4-4)+1 = 1 -> 1
        "encoder": [63, 29, 13, 4, 1, 1],
        # 1 -> 0+4 = 4 -> (4-1)*2+7 = 13 -> (13-1)*2+5 = 29 -> (29-1)*2+7 = 63 -> (63-1)*1+2 = 64 -> 64
        "decoder": [4, 13, 29, 63, 64, 64],
        "disc_x": [63, 29, 13, 4, 1],
        "disc_z": [1, 1],
        "disc_joint": [1, 1, 1],
    },
    "tiny_imagenet": {
        # 64 -> (64-4)//2+1 = 31 -> (31-4)+1 = 28 -> (28-4)//2+1 = 13 -> (13-4)+1 = 10 -> (10-4)//2+1 = 4
        #    -> (4-4)+1 = 1 -> 1 -> 1 -> 1
        "encoder": [31, 28, 13, 10, 4, 1, 1, 1, 1],
        # 1 -> 1 -> 1 -> (1-1)+4 = 4 -> (4-1)*2+4 = 10 -> (10-1)+4 = 13 -> (13-1)*2+4 = 28 -> (28-1)+4 = 31
        #   -> (31-1)*2+4 = 64 -> 64
        "decoder": [1, 1, 4, 10, 13, 28, 31, 64, 64],
        "disc_x": [31, 28, 13, 10, 4, 1],
        "disc_z": [1, 1],
        "disc_joint": [1, 1, 1],
    },
}
SIZES["svhn"] = SIZES["cifar10"]  # Tables 3 and 4 share every kernel and stride

# Channels each layer *outputs* (after maxout for CIFAR10's D: 2 pieces halve the table's maps).
CHANNELS = {
    "cifar10": {"encoder": [32, 64, 128, 256, 512, 512, 128], "decoder": [256, 128, 64, 32, 32, 32, 3],
                "disc_x": [16, 32, 64, 128, 256], "disc_z": [256, 256], "disc_joint": [512, 512, 1]},
    "svhn": {"encoder": [32, 64, 128, 256, 512, 512, 512], "decoder": [256, 128, 64, 32, 32, 32, 3],
             "disc_x": [32, 64, 128, 256, 512], "disc_z": [512, 512], "disc_joint": [1024, 1024, 1]},
    "celeba": {"encoder": [64, 128, 256, 256, 512, 512], "decoder": [512, 256, 256, 128, 64, 3],
               "disc_x": [64, 128, 256, 256, 512], "disc_z": [1024, 1024], "disc_joint": [2048, 2048, 1]},
    "tiny_imagenet": {"encoder": [64, 64, 128, 128, 256, 256, 2048, 2048, 512],
                      "decoder": [2048, 256, 256, 128, 128, 64, 64, 64, 3],
                      "disc_x": [64, 64, 128, 128, 256, 256], "disc_z": [2048, 2048],
                      "disc_joint": [4096, 4096, 1]},
}

# --- Parameter counts, by hand ----------------------------------------------------------------------
PARAMS = {
    "cifar10": {
        # 25*3*32=2400 +BN 64 | 16*32*64=32768 +128 | 16*64*128=131072 +256 | 16*128*256=524288 +512
        # | 16*256*512=2097152 +1024 | 512*512=262144 +1024 | 512*128=65536 +128 bias
        # = 2464 + 32896 + 131328 + 524800 + 2098176 + 263168 + 65664
        "encoder": 3118496,
        # 16*64*256=262144 +512 | 16*256*128=524288 +256 | 16*128*64=131072 +128 | 16*64*32=32768 +64
        # | 25*32*32=25600 +64 | 32*32=1024 +64 | 32*3=96 + untied 3*32*32=3072
        # = 262656 + 524544 + 131200 + 32832 + 25664 + 1088 + 3168
        "decoder": 981152,
        # maxout halves the next layer's input; untied biases (maps x H x W, sizes 28, 13, 10, 4, 1):
        # 25*3*32=2400 +32*28*28=25088 | 16*16*64=16384 +64*13*13=10816 | 16*32*128=65536 +128*10*10=12800
        # | 16*64*256=262144 +256*4*4=4096 | 16*128*512=1048576 +512
        # = 27488 + 27200 + 78336 + 266240 + 1049088
        "disc_x": 1448352,
        # 64*512=32768 | (512/2)*512=131072 (no biases)
        "disc_z": 163840,
        # input 256+256=512: 512*1024+1024=525312 | (1024/2)*1024+1024=525312 | 512*1+1=513
        "disc_joint": 1051137,
        # 1448352 + 163840 + 1051137
        "joint_d": 2663329,
        # 1448352 + head 1x1 conv 256->1 with bias (256+1 = 257)
        "gan_d": 1448609,
    },
    "svhn": {
        # as CIFAR10's up to the output: 3052832 + 512*512=262144 +512 bias = 262656
        "encoder": 3315488,
        # 16*256*256=1048576 +512 = 1049088, then CIFAR10's 524544+131200+32832+25664+1088+3168 = 718496
        "decoder": 1767584,
        # 2400+32 bias | 32768+BN 128 | 131072+256 | 524288+512 | 2097152+1024
        # = 2432 + 32896 + 131328 + 524800 + 2098176
        "disc_x": 2789632,
        # 256*512=131072 | 512*512=262144
        "disc_z": 393216,
        # input 512+512=1024: 1024*1024+1024=1049600 (x2) | 1024+1=1025
        "disc_joint": 2100225,
        "joint_d": 5283073,  # 2789632 + 393216 + 2100225
        "gan_d": 2790145,  # 2789632 + 512+1
    },
    "celeba": {
        # 4*3*64=768 +128 | 49*64*128=401408 +256 | 25*128*256=819200 +512 | 49*256*256=3211264 +512
        # | 16*256*512=2097152 +1024 | 512*512=262144 +512 bias
        # = 896 + 401664 + 819712 + 3211776 + 2098176 + 262656
        "encoder": 6794880,
        # 16*256*512=2097152 +1024 | 49*512*256=6422528 +512 | 25*256*256=1638400 +512
        # | 49*256*128=1605632 +256 | 4*128*64=32768 +128 | 64*3=192 + untied 3*64*64=12288
        # = 2098176 + 6423040 + 1638912 + 1605888 + 32896 + 12480
        "decoder": 11811392,
        # the encoder's first five layers (BN everywhere, so no bias): 896+401664+819712+3211776+2098176
        "disc_x": 6532224,
        # z is 256-d (Table 5 prints 512): 256*1024=262144 | 1024*1024=1048576
        "disc_z": 1310720,
        # input 512+1024=1536: 1536*2048+2048=3147776 | 2048*2048+2048=4196352 | 2048+1=2049
        "disc_joint": 7346177,
        "joint_d": 15189121,  # 6532224 + 1310720 + 7346177
        "gan_d": 6532737,  # 6532224 + 512+1
    },
    "tiny_imagenet": {
        # 16*3*64=3072 +128 | 16*64*64=65536 +128 | 16*64*128=131072 +256 | 16*128*128=262144 +256
        # | 16*128*256=524288 +512 | 16*256*256=1048576 +512 | 256*2048=524288 +4096
        # | 2048*2048=4194304 +4096 | 2048*512=1048576 +512 bias
        # = 3200+65664+131328+262400+524800+1049088+528384+4198400+1049088
        "encoder": 7812352,
        # 256*2048=524288 +4096 | 2048*256=524288 +512 | 16*256*256=1048576 +512 | 16*256*128=524288 +256
        # | 16*128*128=262144 +256 | 16*128*64=131072 +128 | 16*64*64=65536 +128 | 16*64*64=65536 +128
        # | 64*3=192 + untied 3*64*64=12288
        # = 528384+524800+1049088+524544+262400+131200+65664+65664+12480
        "decoder": 3164224,
        # 3072+64 bias | 65536+128 | 131072+256 | 262144+256 | 524288+512 | 1048576+512
        # = 3136+65664+131328+262400+524800+1049088
        "disc_x": 2036416,
        # 256*2048=524288 +2048 bias | 2048*2048=4194304 +2048 bias
        "disc_z": 4722688,
        # input 256+2048=2304: 2304*4096+4096=9441280 | 4096*4096+4096=16781312 | 4096+1=4097
        "disc_joint": 26226689,
        "joint_d": 32985793,  # 2036416 + 4722688 + 26226689
        "gan_d": 2036673,  # 2036416 + 256+1
    },
}


def test_hand_arithmetic_sums():
    """The per-network totals above are the sums their comments show (guards the arithmetic)."""
    P = PARAMS
    assert P["cifar10"]["encoder"] == 2464 + 32896 + 131328 + 524800 + 2098176 + 263168 + 65664
    assert P["cifar10"]["decoder"] == 262656 + 524544 + 131200 + 32832 + 25664 + 1088 + 3168
    assert P["cifar10"]["disc_x"] == 27488 + 27200 + 78336 + 266240 + 1049088
    assert P["cifar10"]["disc_x"] == (2400 + 25088) + (16384 + 10816) + (65536 + 12800) + (262144 + 4096) + (
        1048576 + 512)
    assert P["cifar10"]["disc_joint"] == 2 * 525312 + 513
    assert P["svhn"]["encoder"] == 3118496 - 65664 + 262656
    assert P["svhn"]["decoder"] == 1049088 + 718496
    assert P["svhn"]["disc_x"] == 2432 + 32896 + 131328 + 524800 + 2098176
    assert P["svhn"]["disc_joint"] == 2 * 1049600 + 1025
    assert P["celeba"]["encoder"] == 896 + 401664 + 819712 + 3211776 + 2098176 + 262656
    assert P["celeba"]["decoder"] == 2098176 + 6423040 + 1638912 + 1605888 + 32896 + 12480
    assert P["celeba"]["disc_x"] == 896 + 401664 + 819712 + 3211776 + 2098176
    assert P["celeba"]["disc_joint"] == 3147776 + 4196352 + 2049
    assert P["tiny_imagenet"]["encoder"] == (3200 + 65664 + 131328 + 262400 + 524800 + 1049088 + 528384
                                             + 4198400 + 1049088)
    assert P["tiny_imagenet"]["decoder"] == (528384 + 524800 + 1049088 + 524544 + 262400 + 131200 + 65664
                                             + 65664 + 12480)
    assert P["tiny_imagenet"]["disc_x"] == 3136 + 65664 + 131328 + 262400 + 524800 + 1049088
    assert P["tiny_imagenet"]["disc_z"] == 524288 + 2048 + 4194304 + 2048
    assert P["tiny_imagenet"]["disc_joint"] == 9441280 + 16781312 + 4097
    for name in NAMES:
        p = P[name]
        assert p["joint_d"] == p["disc_x"] + p["disc_z"] + p["disc_joint"]
        assert p["gan_d"] == p["disc_x"] + CHANNELS[name]["disc_x"][-1] + 1


def _formula_params(name: str, part: str, in_ch: int, size: int) -> int:
    """The same counts computed from the transcribed table + the bias conventions (cross-check)."""
    rows, total, pieces = TABLES[name][part], 0, 2 if name == "cifar10" else 1
    for i, (op, k, s, out, bn, _drop, act) in enumerate(rows):
        size = (size - k) // s + 1 if op == "C" else (size - 1) * s + k
        total += k * k * in_ch * out + (2 * out if bn else 0)
        last, first = i == len(rows) - 1, i == 0
        tied = (part == "encoder" and last) or (part == "disc_x" and first and not bn) or part == "disc_joint"
        tied = (tied and not (name == "cifar10" and part == "disc_x")) or (name == "tiny_imagenet" and part == "disc_z")
        untied = (part == "decoder" and last) or (name == "cifar10" and part == "disc_x")
        total += out if tied else 0
        total += out * size * size if untied else 0
        in_ch = out // pieces if act == "M" else out
    return total


@pytest.mark.parametrize("name", NAMES)
def test_hand_counts_agree_with_table_formula(name):
    z, img = Z_DIM[name], IMAGE[name]
    dx_out = CHANNELS[name]["disc_x"][-1]
    dz_out = CHANNELS[name]["disc_z"][-1]
    got = {"encoder": _formula_params(name, "encoder", 3, img),
           "decoder": _formula_params(name, "decoder", z, 1),
           "disc_x": _formula_params(name, "disc_x", 3, img),
           "disc_z": _formula_params(name, "disc_z", z, 1),
           "disc_joint": _formula_params(name, "disc_joint", dx_out + dz_out, 1)}
    for part, n in got.items():
        assert n == PARAMS[name][part], part


# --- Networks, built once per spec ------------------------------------------------------------------
@pytest.fixture(scope="module")
def nets():
    cache = {}

    def get(name):
        if name not in cache:
            spec = architectures.architecture(name, architectures.table_options(name))
            cache[name] = (ConvEncoder(spec).eval(), ConvDecoder(spec).eval(), JointConvDiscriminator(spec).eval(),
                           JointConvDiscriminator(spec, joint=False).eval())
        return cache[name]

    return get


def test_specs_registry():
    assert set(architectures.ARCHITECTURES) == set(NAMES)
    for name in NAMES:
        s = architectures.ARCHITECTURES[name]
        assert s.name == name
        assert (s.image_size, s.channels, s.z_dim) == (IMAGE[name], 3, Z_DIM[name])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("part", PARTS)
def test_spec_rows_match_table(name, part):
    """Every spec row has the table's operation, kernel, stride, maps, BN and dropout."""
    rows = getattr(architectures.architecture(name, architectures.table_options(name)), part)
    table = TABLES[name][part]
    assert len(rows) == len(table)
    ops = {"C": architectures.CONV, "T": architectures.CONVT}
    acts = {"L": architectures.LRELU, "M": architectures.MAXOUT, "lin": architectures.LINEAR, "sig": architectures.SIGMOID}
    for row, (op, k, s, out, bn, drop, act) in zip(rows, table):
        assert (row.op, row.kernel, row.stride, row.out, row.bn, row.dropout) == (ops[op], k, s, out, bn, drop)
        assert row.act == acts[act]


def _check_stack(stack: Stack, outs: list[torch.Tensor], chans: list[int], sizes: list[int]):
    assert stack.sizes == sizes
    assert stack.channels == chans
    assert [tuple(o.shape) for o in outs] == [(B, c, s, s) for c, s in zip(chans, sizes)]


@pytest.mark.parametrize("name", NAMES)
def test_encoder_layer_shapes(name, nets):
    enc, *_ = nets(name)
    x = torch.rand(B, 3, IMAGE[name], IMAGE[name])
    with torch.no_grad():
        outs = enc.net.layer_outputs(x)
        mu_logsig = enc(x)
    _check_stack(enc.net, outs, CHANNELS[name]["encoder"], SIZES[name]["encoder"])
    # ends at 2 * z_dim x 1 x 1, flattened by forward
    assert CHANNELS[name]["encoder"][-1] == 2 * Z_DIM[name]
    assert mu_logsig.shape == (B, 2 * Z_DIM[name])
    torch.testing.assert_close(mu_logsig, outs[-1].flatten(1))


@pytest.mark.parametrize("name", NAMES)
def test_decoder_layer_shapes_and_sigmoid(name, nets):
    _, dec, *_ = nets(name)
    z = torch.randn(B, Z_DIM[name])
    with torch.no_grad():
        outs = dec.net.layer_outputs(z.view(B, -1, 1, 1))
        x = dec(z)
    _check_stack(dec.net, outs, CHANNELS[name]["decoder"], SIZES[name]["decoder"])
    assert x.shape == (B, 3, IMAGE[name], IMAGE[name])
    assert isinstance(dec.net[-1], nn.Sigmoid)
    assert x.min() > 0 and x.max() < 1


@pytest.mark.parametrize("name", NAMES)
def test_joint_discriminator_layer_shapes(name, nets):
    *_, d, _ = nets(name)
    x, z = torch.rand(B, 3, IMAGE[name], IMAGE[name]), torch.randn(B, Z_DIM[name])
    with torch.no_grad():
        hx = d.dx.layer_outputs(x)
        hz = d.dz.layer_outputs(z.view(B, -1, 1, 1))
        hj = d.joint.layer_outputs(torch.cat([hx[-1], hz[-1]], 1))
        logits = d(x, z)
    _check_stack(d.dx, hx, CHANNELS[name]["disc_x"], SIZES[name]["disc_x"])
    _check_stack(d.dz, hz, CHANNELS[name]["disc_z"], SIZES[name]["disc_z"])
    _check_stack(d.joint, hj, CHANNELS[name]["disc_joint"], SIZES[name]["disc_joint"])
    assert logits.shape == (B,)  # one logit per example
    torch.testing.assert_close(logits, hj[-1].flatten())
    # a logit, not a probability: the sigmoid is in the loss
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())


@pytest.mark.parametrize("name", NAMES)
def test_gan_discriminator_shapes(name, nets):
    *_, g = nets(name)
    x = torch.rand(B, 3, IMAGE[name], IMAGE[name])
    with torch.no_grad():
        hx = g.dx.layer_outputs(x)
        logits = g(x)
    _check_stack(g.dx, hx, CHANNELS[name]["disc_x"], SIZES[name]["disc_x"])
    assert g.dz is None
    assert logits.shape == (B,)
    head = [m for m in g.joint if isinstance(m, nn.Conv2d)]
    assert len(head) == 1 and (head[0].in_channels, head[0].out_channels, head[0].kernel_size) == (
        CHANNELS[name]["disc_x"][-1], 1, (1, 1))
    assert not any(isinstance(m, nn.Sigmoid) for m in g.modules())


@pytest.mark.parametrize("name", NAMES)
def test_parameter_counts(name, nets):
    enc, dec, d, g = nets(name)
    p = PARAMS[name]
    assert n_params(enc) == p["encoder"]
    assert n_params(dec) == p["decoder"]
    assert n_params(d.dx) == p["disc_x"]
    assert n_params(d.dz) == p["disc_z"]
    assert n_params(d.joint) == p["disc_joint"]
    assert n_params(d) == p["joint_d"]
    assert n_params(g) == p["gan_d"]
    assert n_params(d) == p["joint_d"] and n_params(enc) == p["encoder"]


def test_svhn_encoder_feature_layers():
    """L2-SVM features: the last three hidden layers (256x4x4, 512x1x1, 512x1x1) plus mu (256) = 5,376."""
    enc = ConvEncoder(architectures.SVHN).eval()
    with torch.no_grad():
        outs = enc.net.layer_outputs(torch.rand(B, 3, 32, 32))
    *_, h4, h5, h6, out = outs
    assert h4.shape == (B, 256, 4, 4) and h5.shape == (B, 512, 1, 1) and h6.shape == (B, 512, 1, 1)
    mu = out.flatten(1)[:, :256]
    feats = torch.cat([h.flatten(1) for h in (h4, h5, h6)] + [mu], 1)
    assert feats.shape == (B, 4096 + 512 + 512 + 256) == (B, 5376)


# --- Module structure per row: dropout -> conv -> [untied bias] -> [BN] -> nonlinearity -------------
def _expected_bias(name: str, part: str, i: int, n: int, bn: bool) -> str:
    if part == "encoder":
        return "tied" if i == n - 1 else "none"
    if part == "decoder":
        return "untied" if i == n - 1 else "none"
    if part == "disc_x" and name == "cifar10":
        return "untied"  # the released script, under Blocks' default of its date
    if part == "disc_x":
        return "tied" if (i == 0 and not bn) else "none"
    if part == "disc_z":
        return "tied" if name == "tiny_imagenet" else "none"
    return "tied"  # disc_joint


@pytest.mark.parametrize("name", NAMES)
def test_module_structure_matches_tables(name, nets):
    enc, dec, d, _ = nets(name)
    stacks = {"encoder": enc.net, "decoder": dec.net, "disc_x": d.dx, "disc_z": d.dz, "disc_joint": d.joint}
    for part, stack in stacks.items():
        table = TABLES[name][part]
        rows = stack_rows(stack)
        assert len(rows) == len(table), part
        for i, (mods, (op, k, s, out, bn, drop, act)) in enumerate(zip(rows, table)):
            where = f"{name}.{part}[{i}]"
            mods = list(mods)
            if drop > 0:  # dropout sits on the layer's input, before its conv
                assert isinstance(mods[0], nn.Dropout) and mods[0].p == drop, where
                mods = mods[1:]
            assert not any(isinstance(m, nn.Dropout) for m in mods), where
            conv = mods.pop(0)
            assert type(conv) is (nn.Conv2d if op == "C" else nn.ConvTranspose2d), where
            assert conv.kernel_size == (k, k) and conv.stride == (s, s) and conv.padding == (0, 0), where
            assert conv.out_channels == out, where
            bias = _expected_bias(name, part, i, len(table), bn)
            assert (conv.bias is not None) == (bias == "tied"), where
            if bias == "untied":
                ub = mods.pop(0)
                assert isinstance(ub, UntiedBias), where
                size = SIZES[name][part][i]
                assert ub.bias.shape == (out, size, size), where
            if bn:
                norm = mods.pop(0)
                assert isinstance(norm, nn.BatchNorm2d) and norm.num_features == out, where
                assert norm.eps == 1e-4 and norm.momentum == 0.05, where
                assert norm.affine and norm.track_running_stats, where
            assert not any(isinstance(m, (nn.BatchNorm2d, UntiedBias)) for m in mods), where
            if act == "L":
                assert len(mods) == 1 and isinstance(mods[0], nn.LeakyReLU), where
                assert mods[0].negative_slope == LEAK[name], where
            elif act == "M":
                assert len(mods) == 1 and isinstance(mods[0], ChannelMaxout) and mods[0].pieces == 2, where
            elif act == "sig":
                assert len(mods) == 1 and isinstance(mods[0], nn.Sigmoid), where
            else:
                assert mods == [], where


def test_dropout_rates_examples():
    """Table 3's CIFAR10 D(x): 0.2 then 0.5 x4; SVHN D: 0.2 everywhere; generators: no dropout."""
    d = JointConvDiscriminator(architectures.architecture("cifar10", architectures.table_options("cifar10")))
    assert [m.p for m in d.dx if isinstance(m, nn.Dropout)] == [0.2, 0.5, 0.5, 0.5, 0.5]
    assert [m.p for m in d.dz if isinstance(m, nn.Dropout)] == [0.2, 0.5]
    assert [m.p for m in d.joint if isinstance(m, nn.Dropout)] == [0.5, 0.5, 0.5]
    d = JointConvDiscriminator(architectures.SVHN)
    assert {m.p for m in d.modules() if isinstance(m, nn.Dropout)} == {0.2}
    assert sum(isinstance(m, nn.Dropout) for m in d.modules()) == 5 + 2 + 3
    for name in NAMES:
        spec = architectures.ARCHITECTURES[name]
        assert all(layer.dropout == 0.0 for layer in spec.encoder + spec.decoder)


@pytest.mark.parametrize("name", NAMES)
def test_bn_count_and_settings(name, nets):
    enc, dec, d, g = nets(name)
    for part, net in (("encoder", enc), ("decoder", dec)):
        bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
        assert len(bns) == sum(r[4] for r in TABLES[name][part])
    bns = [m for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == sum(r[4] for p in ("disc_x", "disc_z", "disc_joint") for r in TABLES[name][p])
    assert {(m.eps, m.momentum) for m in bns + [m for m in enc.modules() if isinstance(m, nn.BatchNorm2d)]} <= {
        (1e-4, 0.05)}
    if name == "cifar10":  # Table 3: no BN anywhere in D
        assert not bns and not any(isinstance(m, nn.BatchNorm2d) for m in g.modules())


def test_leaky_relu_slopes():
    for name, slope in (("cifar10", 0.1), ("svhn", 0.01), ("celeba", 0.02), ("tiny_imagenet", 0.01)):
        spec = architectures.ARCHITECTURES[name]
        assert spec.leak == slope
        stack = Stack(spec.encoder[:2], 3, spec.image_size, spec.leak, spec.maxout_pieces)
        assert {m.negative_slope for m in stack if isinstance(m, nn.LeakyReLU)} == {slope}


def test_channel_maxout_groups_consecutive_channels():
    m = ChannelMaxout(2)
    # channels (per pixel, 2 pixels): c0, c1 | c2, c3
    x = torch.tensor([[1.0, 9.0], [5.0, 2.0], [-3.0, 0.0], [-1.0, -4.0]]).view(1, 4, 1, 2)
    # consecutive groups: max(c0, c1), max(c2, c3) = [5, 9], [-1, 0]
    # (interleaved {c0, c2}, {c1, c3} would give [1, 9], [5, 2])
    torch.testing.assert_close(m(x), torch.tensor([[5.0, 9.0], [-1.0, 0.0]]).view(1, 2, 1, 2))
    m3 = ChannelMaxout(3)
    y = torch.arange(12.0).view(1, 6, 1, 2)
    assert m3(y).shape == (1, 2, 1, 2)
    torch.testing.assert_close(m3(y).flatten(), torch.tensor([4.0, 5.0, 10.0, 11.0]))


def test_cifar10_joint_input_is_512():
    """Maxout halves D(x)'s and D(z)'s 512 maps: joint D sees 256 + 256 = 512 (Table 3 prints 1024)."""
    d = JointConvDiscriminator(architectures.CIFAR10)
    first = next(m for m in d.joint if isinstance(m, nn.Conv2d))
    assert first.in_channels == 512
    second = [m for m in d.joint if isinstance(m, nn.Conv2d)][1]
    assert second.in_channels == 512  # 1024 maps, maxout 2 -> 512


# --- Decoder output bias ------------------------------------------------------------------------------
def test_init_output_bias_sets_log_odds_of_mean_pixel():
    dec = ConvDecoder(architectures.SVHN).eval()
    images = torch.rand(10, 3, 32, 32) * 0.8 + 0.1
    images[:, 0, 0, 0] = 0.0  # always black: log-odds clamped (finite), not -inf
    images[:, 1, 2, 3] = 1.0  # always white: clamped, not +inf
    dec.init_output_bias(images)
    ub = [m for m in dec.net if isinstance(m, UntiedBias)]
    assert len(ub) == 1 and ub[0].bias.shape == (3, 32, 32)
    p = images.mean(0).clamp(1e-7, 1 - 1e-7)
    torch.testing.assert_close(ub[0].bias.detach(), torch.log(p / (1 - p)))
    assert torch.isfinite(ub[0].bias).all()
    assert ub[0].bias[0, 0, 0] < -15 and ub[0].bias[1, 2, 3] > 15
    # all other weights zero (BN at identity, eval mode): G_x(0) is the mean pixel
    with torch.no_grad():
        for m in dec.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.zero_()
                if m.bias is not None:
                    m.bias.zero_()
        out = dec(torch.zeros(3, architectures.SVHN.z_dim))
    mean = images.mean(0)
    inner = mean.clone()
    inner[0, 0, 0], inner[1, 2, 3] = 1e-7, 1 - 1e-7
    for i in range(3):
        torch.testing.assert_close(out[i], inner, atol=1e-6, rtol=1e-5)


# --- Optimiser and schedule ---------------------------------------------------------------------------
@pytest.mark.parametrize("name,batch,epochs,z", [("cifar10", 100, 6475, 64), ("svhn", 100, 100, 256),
                                                 ("celeba", 100, 123, 256), ("tiny_imagenet", 128, 125, 256)])
def test_optimiser_and_schedule(name, batch, epochs, z):
    s = architectures.ARCHITECTURES[name]
    assert s.lr == 1e-4 and s.beta1 == 0.5
    assert s.beta2 == 0.999  # the tables' 10^-3 is Blocks' 1 - beta2; never 0.001
    assert s.batch_size == batch and s.epochs == epochs
    assert s.init_std == 0.01
    assert s.z_dim == z
    assert s.maxout_pieces == (2 if name == "cifar10" else 1)
    assert s.table == {"cifar10": "Table 3", "svhn": "Table 4", "celeba": "Table 5",
                       "tiny_imagenet": "Table 6"}[name]


def test_out_size_helper():
    conv = architectures.L(architectures.CONV, 7, 2, 1, False, 0.0, architectures.LINEAR)
    convt = architectures.L(architectures.CONVT, 7, 2, 1, False, 0.0, architectures.LINEAR)
    assert architectures.out_size(conv, 63) == 29  # (63-7)//2+1
    assert architectures.out_size(convt, 13) == 31  # (13-1)*2+7
    assert architectures.out_size(convt, 1) == 7  # (1-1)*2+7
