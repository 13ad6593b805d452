"""Layers and initialisation shared by every architecture."""

from __future__ import annotations

import torch
from torch import nn

# Blocks' BatchNormalization as the authors configured it: epsilon 1e-4, and population statistics
# updated as m * 0.05 + p * 0.95, which is PyTorch's momentum=0.05.
BN_EPS = 1e-4
BN_MOMENTUM = 0.05


class Maxout(nn.Module):
    """Linear to ``out_features * pieces`` units, then the max over each group of ``pieces``."""

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.linear(x)  # (B, out * pieces), groups of consecutive units
        return h.view(*h.shape[:-1], self.out_features, self.pieces).amax(dim=-1)


def bn_linear_relu(in_features: int, out_features: int) -> nn.Sequential:
    """The mixture generators' hidden layer: Linear without bias -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Linear(in_features, out_features, bias=False),
        nn.BatchNorm1d(out_features, eps=BN_EPS, momentum=BN_MOMENTUM),
        nn.ReLU(),
    )


@torch.no_grad()
def init_normal_(module: nn.Module, std: float) -> nn.Module:
    """Every Linear/Conv weight ~ N(0, std^2) and bias 0 (Blocks' IsotropicGaussian + Constant(0)).

    BatchNorm keeps scale 1 and shift 0, as Blocks initialised it.
    """
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            m.weight.normal_(0.0, std)
            if m.bias is not None:
                m.bias.zero_()
    return module
