"""One builder for every image architecture in ``ali.nets.architectures``.

A layer row becomes: Dropout (on its input) -> Conv or ConvTranspose (no padding) -> untied bias
(where the row says so) -> BatchNorm -> Dropout on the nonlinearity's input (``act_dropout``, CIFAR10's
released D(x) only) -> nonlinearity (LeakyReLU, maxout over channel groups, sigmoid or none).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from ali.nets.layers import BN_EPS, BN_MOMENTUM
from ali.nets.architectures import CONV, LINEAR, LRELU, MAXOUT, SIGMOID, TIED, UNTIED, Architecture, Layer, out_size


class ChannelMaxout(nn.Module):
    """Max over groups of ``pieces`` consecutive channels: (B, C, H, W) -> (B, C / pieces, H, W)."""

    def __init__(self, pieces: int):
        super().__init__()
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.view(b, c // self.pieces, self.pieces, h, w).amax(dim=2)


class UntiedBias(nn.Module):
    """One bias per channel and pixel (Blocks' ``tied_biases=False``)."""

    def __init__(self, channels: int, size: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels, size, size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


def _block(layer: Layer, in_ch: int, size: int, leak: float, pieces: int) -> tuple[list[nn.Module], int, int, int]:
    """The modules of one table row, its output channels and size, and how many modules precede its
    nonlinearity (the pre-activation output is what the released feature script reads)."""
    mods: list[nn.Module] = []
    if layer.dropout > 0:
        mods.append(nn.Dropout(layer.dropout))
    conv_cls = nn.Conv2d if layer.op == CONV else nn.ConvTranspose2d
    mods.append(conv_cls(in_ch, layer.out, layer.kernel, layer.stride, padding=0, bias=layer.bias == TIED))
    size = out_size(layer, size)
    if size < 1:
        raise ValueError(f"layer {layer} shrinks the input below 1x1")
    if layer.bias == UNTIED:
        mods.append(UntiedBias(layer.out, size))
    if layer.bn:
        mods.append(nn.BatchNorm2d(layer.out, eps=BN_EPS, momentum=BN_MOMENTUM))
    out_ch, n_pre = layer.out, len(mods)
    if layer.act_dropout > 0:
        mods.append(nn.Dropout(layer.act_dropout))
    if layer.act == LRELU:
        mods.append(nn.LeakyReLU(leak))
    elif layer.act == MAXOUT:
        mods.append(ChannelMaxout(pieces))
        out_ch = layer.out // pieces
    elif layer.act == SIGMOID:
        mods.append(nn.Sigmoid())
    elif layer.act != LINEAR:
        raise ValueError(f"unknown nonlinearity {layer.act!r}")
    return mods, out_ch, size, n_pre


class Stack(nn.Sequential):
    """An architecture stack of layers; ``out_channels``/``out_size`` and per-layer sizes are recorded."""

    def __init__(self, layers: tuple[Layer, ...], in_ch: int, size: int, leak: float, pieces: int):
        mods, self_sizes, self_channels, self_ends, self_pre = [], [], [], [], []
        for layer in layers:
            block, in_ch, size, n_pre = _block(layer, in_ch, size, leak, pieces)
            self_pre.append(len(mods) + n_pre)
            mods.extend(block)
            self_sizes.append(size)
            self_channels.append(in_ch)
            self_ends.append(len(mods))
        super().__init__(*mods)
        self.sizes, self.channels, self.layer_ends, self.preact_ends = self_sizes, self_channels, self_ends, self_pre
        self.out_channels, self.out_size = in_ch, size

    def layer_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every table row (after its nonlinearity), for representation probes."""
        outs, start = [], 0
        for end in self.layer_ends:
            for m in list(self)[start:end]:
                x = m(x)
            outs.append(x)
            start = end
        return outs


    def preactivations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every table row's output before its nonlinearity (after BN where the row has BN)."""
        outs, mods = [], list(self)
        marks = set(self.preact_ends)
        for i, m in enumerate(mods):
            if i in marks:
                outs.append(x)
            x = m(x)
        if len(mods) in marks:
            outs.append(x)
        return outs


class ConvEncoder(nn.Module):
    """x (B, C, H, W) -> (B, 2 * z): mu and log sigma, flattened from the 1x1 output."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.net = Stack(arch.encoder, arch.channels, arch.image_size, arch.leak, arch.maxout_pieces)
        if self.net.out_size != 1 or self.net.out_channels != 2 * arch.z_dim:
            raise ValueError(f"{arch.name} encoder ends at {self.net.out_channels}x{self.net.out_size}^2, "
                             f"expected {2 * arch.z_dim}x1x1")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)

    def preactivations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every table row's output before its nonlinearity: the representation probes' layers."""
        return self.net.preactivations(x)


class ConvDecoder(nn.Module):
    """z (B, z) -> x (B, C, H, W) in [0, 1]."""

    def __init__(self, arch: Architecture):
        super().__init__()
        self.net = Stack(arch.decoder, arch.z_dim, 1, arch.leak, arch.maxout_pieces)
        if self.net.out_size != arch.image_size or self.net.out_channels != arch.channels:
            raise ValueError(f"{arch.name} decoder ends at {self.net.out_channels}x{self.net.out_size}^2")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], -1, 1, 1))

    @torch.no_grad()
    def init_output_bias(self, images: torch.Tensor) -> None:
        """Start the untied output bias at the log-odds of the mean training pixel (released code)."""
        bias = [m for m in self.net if isinstance(m, UntiedBias)]
        if not bias:
            return
        p = images.float().mean(0).clamp(1e-7, 1 - 1e-7)
        bias[-1].bias.copy_(torch.log(p / (1 - p)))


class JointConvDiscriminator(nn.Module):
    """D(x, z) = joint(concat(D_x(x), D_z(z))) -> logits (B,). Without z (GAN): a 1x1 head on D_x."""

    def __init__(self, arch: Architecture, joint: bool = True, n_out: int = 1):
        """``n_out`` logits per example: 1 for the adversarial game, K for the K+1 classifier."""
        super().__init__()
        self.n_out = n_out
        self.dx = Stack(arch.disc_x, arch.channels, arch.image_size, arch.leak, arch.maxout_pieces)
        if self.dx.out_size != 1:
            raise ValueError(f"{arch.name} D(x) ends at {self.dx.out_size}x{self.dx.out_size}, expected 1x1")
        if joint:
            self.dz = Stack(arch.disc_z, arch.z_dim, 1, arch.leak, arch.maxout_pieces)
            in_ch = self.dx.out_channels + self.dz.out_channels
            rows = arch.disc_joint[:-1] + (replace(arch.disc_joint[-1], out=n_out),)
            self.joint = Stack(rows, in_ch, 1, arch.leak, arch.maxout_pieces)
        else:
            # The GAN baseline's D(x): the x-stack, then a biased 1x1 convolution to one logit (ours).
            self.dz = None
            self.joint = nn.Sequential(nn.Dropout(arch.disc_joint[-1].dropout),
                                       nn.Conv2d(self.dx.out_channels, n_out, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.dx(x)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        h = self.dx(x)
        if self.dz is not None:
            h = torch.cat([h, self.dz(z.view(z.shape[0], -1, 1, 1))], dim=1)
        out = self.joint(h).flatten(1)  # (B, n_out)
        return out.squeeze(1) if self.n_out == 1 else out
