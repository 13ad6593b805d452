"""How the training loops read their data: each epoch's order and a batch as the model takes it.

The order of an epoch is a pure function of (seed, epoch), so a resumed run needs no loader state and
a run draws the same minibatches alone (``ali.train.loop``) or in a group (``ali.engine.step``).
"""

from __future__ import annotations

import torch


def epoch_permutation(seed: int, epoch: int, n: int, device: torch.device) -> torch.Tensor:
    """The data order of one epoch: a pure function of (seed, epoch), so resume needs no loader state."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).to(device)


def as_model_input(x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """A batch as the model takes it: uint8 images become float in [0, 1] on the device, per batch."""
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
