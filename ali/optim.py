"""Adam, and the one place where Blocks' Adam convention becomes PyTorch's.

Blocks' Adam (the authors' framework) used the (1 - beta) parameterisation until January 2017:
its ``beta1=0.8`` is PyTorch's ``beta1=0.2`` and the paper's ``beta2 = 10^-3`` is PyTorch's
``beta2=0.999``. A public port that read ``beta2=0.001`` literally trained a different model.
Configs name their convention; this module converts once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

CONVENTIONS = ("torch", "blocks")


@dataclass(frozen=True)
class AdamConfig:
    """Adam hyperparameters as a config states them, with the convention they are written in."""

    lr: float
    beta1: float
    beta2: float
    convention: str = "torch"

    def torch_betas(self) -> tuple[float, float]:
        return torch_betas(self.beta1, self.beta2, self.convention)


def torch_betas(beta1: float, beta2: float, convention: str) -> tuple[float, float]:
    """PyTorch's (beta1, beta2) for betas written in ``convention`` ('torch' or 'blocks')."""
    if convention not in CONVENTIONS:
        raise ValueError(f"Adam convention must be one of {CONVENTIONS}, got {convention!r}")
    if convention == "blocks":
        # Blocks before 2017: m_t = beta * g_t + (1 - beta) * m_{t-1}, so its beta is 1 - ours.
        beta1, beta2 = 1.0 - beta1, 1.0 - beta2
    for name, beta in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= beta < 1.0:
            allowed = "(0, 1]" if convention == "blocks" else "[0, 1)"
            raise ValueError(f"Adam {name} must lie in {allowed} in the {convention} convention")
    return beta1, beta2


def make_adam(params: Iterable[torch.nn.Parameter], cfg: AdamConfig, *, fused: bool | None = None,
              capturable: bool = False) -> torch.optim.Adam:
    """Adam with PyTorch's default eps (Blocks' default epsilon was 1e-8 too). ``fused`` and
    ``capturable`` pick CUDA kernels; a capturable Adam keeps lr in a tensor on the parameters' device,
    so a schedule can change it between CUDA-graph replays."""
    params = list(params)
    lr = torch.tensor(cfg.lr, device=params[0].device) if capturable and params else cfg.lr
    return torch.optim.Adam(params, lr=lr, betas=cfg.torch_betas(), eps=1e-8, fused=fused, capturable=capturable)
