"""Adam for R runs at once, each with its own lr, beta1, beta2, step count and freeze flag.

torch.optim.Adam's update (eps 1e-8, no weight decay, no amsgrad, bias correction from the run's own
step count) in two implementations over the same state, chosen per device (``kernel_for``):
- ``batched`` (CUDA): one update of the whole (R, P) state with per-run (R, 1) hyperparameter columns,
  a fixed number of ops whatever R, where one fused call per run costs 2R launches a step. Per
  element it is plain IEEE arithmetic and sqrt, exact in CPU vector lanes and scalar tails alike, so
  a run's update does not depend on its group; the bias corrections come from running products
  beta**t (float64, (R,)), not from ``pow``. It agrees with torch.optim.Adam to float rounding.
- ``fused`` (CPU): one call per run of the kernel ``torch.optim.Adam(fused=True)`` calls
  (``torch._fused_adam_``) on that run's rows, bit for bit torch's. On a CPU the dispatch of an op
  costs microseconds but a pass over the state does not: the one-pass fused kernel is ~7x faster
  than the batched update's ten passes (0.47 against 3.4 ms for 700k parameters, one thread).
A frozen run (the ``frozen`` flag, set when its losses are not finite) keeps its parameters, moments,
step count and powers (the fused kernel's ``found_inf``, the AMP skip-step, does it without a sync).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

EPS = 1e-8  # torch.optim.Adam's default, as ali.optim.make_adam uses (Blocks' default was 1e-8 too)
STATE = ("param", "exp_avg", "exp_avg_sq", "steps", "beta1_power", "beta2_power")
KERNELS = ("batched", "fused")


def kernel_for(device: torch.device) -> str:
    """``batched`` where launches cost (CUDA), ``fused`` where passes over memory do (CPU)."""
    return "batched" if device.type == "cuda" else "fused"


class RunAdam:
    """Adam over ``param`` (R, P) with per-run (lr, (beta1, beta2)) in PyTorch's convention.

    ``slots`` cuts each run's row into the solo parameters (offset, numel), in the order ``step``'s
    gradients come in.
    """

    def __init__(self, param: Tensor, slots: Sequence[tuple[int, int]], lrs: Sequence[float],
                 betas: Sequence[tuple[float, float]], kernel: str | None = None):
        if not len(lrs) == len(betas) == param.shape[0]:
            raise ValueError(f"{param.shape[0]} runs but {len(lrs)} learning rates and {len(betas)} beta pairs")
        self.kernel = kernel or kernel_for(param.device)
        if self.kernel not in KERNELS:
            raise ValueError(f"Adam kernel must be one of {list(KERNELS)}, got {self.kernel!r}")
        dev = param.device
        self.param, self.slots = param, list(slots)
        self.run_hyper = [(float(lr), float(b1), float(b2)) for lr, (b1, b2) in zip(lrs, betas)]
        hyper = torch.tensor([[lr, b1, b2] for lr, (b1, b2) in zip(lrs, betas)], dtype=torch.float64, device=dev)
        self.lr, self.beta1, self.beta2 = hyper.unbind(1)                                 # (R,) float64 each
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(param), torch.zeros_like(param)
        self.steps = torch.zeros(param.shape[0], dtype=torch.float32, device=dev)       # as torch's state["step"]
        self.beta1_power = torch.ones(param.shape[0], dtype=torch.float64, device=dev)  # beta1 ** steps
        self.beta2_power = torch.ones(param.shape[0], dtype=torch.float64, device=dev)

    def step(self, grads: Sequence[Tensor], frozen: Tensor) -> None:
        """Update, in place, every run whose ``frozen`` (R,) float entry is 0; ``grads`` (R, ...) per slot."""
        live = frozen == 0                                                     # (R,) bool
        self.steps.add_(1.0 - frozen)  # torch.optim.Adam counts a step before the update; a frozen run's stays
        self.beta1_power.mul_(torch.where(live, self.beta1, 1.0))
        self.beta2_power.mul_(torch.where(live, self.beta2, 1.0))
        if self.kernel == "fused":
            self._fused_step(grads, frozen)
            return
        # Per-run columns (R, 1); a frozen run gets weights 0 and step 0 (and no 0/0 before its first step).
        w1 = torch.where(live, 1.0 - self.beta1, 0.0).float().unsqueeze(1)
        w2 = torch.where(live, 1.0 - self.beta2, 0.0).float().unsqueeze(1)
        step_size = torch.where(live, self.lr / (1.0 - self.beta1_power), 0.0).float().unsqueeze(1)
        bc2_sqrt = torch.where(live, (1.0 - self.beta2_power).sqrt(), 1.0).float().unsqueeze(1)

        g = torch.cat([gr.reshape(gr.shape[0], -1) for gr in grads], dim=1)   # (R, P)
        g = torch.where(live.unsqueeze(1), g, 0.0)                             # a frozen run's gradient may be nan
        self.exp_avg.lerp_(g, w1)                                              # m = b1 m + (1 - b1) g
        self.exp_avg_sq.lerp_(g.mul_(g), w2)                                   # v = b2 v + (1 - b2) g^2
        denom = self.exp_avg_sq.sqrt().div_(bc2_sqrt).add_(EPS)                # sqrt(v / (1 - b2^t)) + eps
        self.param.addcmul_(self.exp_avg.div(denom), step_size, value=-1.0)   # p -= lr / (1 - b1^t) * m / denom

    def rows(self, flat: Tensor, r: int) -> list[Tensor]:
        """Run ``r``'s slice of ``flat`` (R, P), one 1-D view per solo parameter."""
        return [flat[r, a:a + n] for a, n in self.slots]

    def _fused_step(self, grads: Sequence[Tensor], frozen: Tensor) -> None:
        n = len(self.slots)
        for r, (lr, beta1, beta2) in enumerate(self.run_hyper):
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
            if name not in state:
                raise KeyError(f"Adam state has no {name!r}")
            if state[name].shape != old.shape:
                raise ValueError(f"Adam state {name!r} has shape {tuple(state[name].shape)}, expected {tuple(old.shape)}")
            old.copy_(state[name])
