"""Adam for R runs, each with its own lr, beta1 and beta2: ``torch.optim.Adam(fused=True)``'s update.

The state is three (R, P) tensors (parameters, first and second moments) and a step count per run.
Each run's step is one call of the fused kernel that ``torch.optim.Adam(fused=True)`` calls
(``torch._fused_adam_``; eps 1e-8, no weight decay, no amsgrad, bias correction from the run's own
step count) on that run's rows: one pass over its memory, where the unfused single-tensor update makes
about seven, and a batched re-statement with per-run (R, 1) hyperparameter columns (tried first) made
about thirty and was slower per run than separate solo optimisers. ``tests/test_engine.py`` checks it bit for bit
against ``torch.optim.Adam(fused=True)``. The kernel's ``found_inf`` flag (the AMP skip-step) freezes a
run without a host sync: its parameters, moments and step count stay as they were. The launches grow
as R per player and step; inside a CUDA graph they cost no host time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

EPS = 1e-8  # torch.optim.Adam's default, as ali.optim.make_adam uses (Blocks' default was 1e-8 too)
STATE = ("param", "exp_avg", "exp_avg_sq", "steps")


class RunAdam:
    """Adam over ``param`` (R, P) with per-run (lr, (beta1, beta2)) in PyTorch's convention.

    ``slots`` cuts each run's row into the solo parameters (offset, numel), so each fused call sees the
    same tensors the solo optimiser holds.
    """

    def __init__(self, param: Tensor, slots: Sequence[tuple[int, int]], lrs: Sequence[float],
                 betas: Sequence[tuple[float, float]]):
        if not len(lrs) == len(betas) == param.shape[0]:
            raise ValueError(f"{param.shape[0]} runs but {len(lrs)} learning rates and {len(betas)} beta pairs")
        self.param, self.slots = param, list(slots)
        self.lrs, self.betas = [float(lr) for lr in lrs], [(float(b1), float(b2)) for b1, b2 in betas]
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(param), torch.zeros_like(param)
        self.steps = torch.zeros(param.shape[0], dtype=torch.float32, device=param.device)  # as torch's state["step"]

    def rows(self, flat: Tensor, r: int) -> list[Tensor]:
        """Run ``r``'s slice of ``flat`` (R, P), one 1-D view per solo parameter."""
        return [flat[r, a:a + n] for a, n in self.slots]

    def step(self, grads: Sequence[Tensor], frozen: Tensor) -> None:
        """Update, in place, every run whose ``frozen`` (R,) float entry is 0; ``grads`` (R, ...) per slot."""
        self.steps.add_(1.0 - frozen)  # torch.optim.Adam counts a step before the update; a frozen run's stays
        n = len(self.slots)
        for r, (lr, (beta1, beta2)) in enumerate(zip(self.lrs, self.betas)):
            torch._fused_adam_(self.rows(self.param, r), [g[r].reshape(-1) for g in grads], self.rows(self.exp_avg, r),
                               self.rows(self.exp_avg_sq, r), [], [self.steps[r]] * n, lr=lr, beta1=beta1,
                               beta2=beta2, weight_decay=0.0, eps=EPS, amsgrad=False, maximize=False,
                               grad_scale=None, found_inf=frozen[r])

    def state_dict(self) -> dict[str, Tensor]:
        return {name: getattr(self, name) for name in STATE}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Copy into the existing tensors (a captured graph keeps reading the same memory)."""
        for name in STATE:
            old = getattr(self, name)
            if state[name].shape != old.shape:
                raise ValueError(f"Adam state {name!r} has shape {tuple(state[name].shape)}, expected {tuple(old.shape)}")
            old.copy_(state[name])
