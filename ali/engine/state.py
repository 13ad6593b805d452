"""Stacked per-run parameters: one player's parameters as a flat (R, P) tensor, with their Adam.

Each run's row holds the solo model's parameters end to end, in ``named_parameters`` order. The
layers see (R, *shape) views of it, named as in the solo state dict; Adam sees each run's row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import prod

import torch
from torch import Tensor

from ali.engine.adam import RunAdam
from ali.engine.batched import piece_major, unit_major


@dataclass(frozen=True)
class Slot:
    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def numel(self) -> int:
        return prod(self.shape)


class FlatLayout:
    """Where each named parameter lives in a run's row of ``width`` floats.

    ``piece_major`` names the maxout linears' parameters (and their pieces) that are stored with rows
    piece-major (``ali.engine.batched.piece_major``); ``stack`` and ``run_tensors`` convert.
    """

    def __init__(self, shapes: Sequence[tuple[str, tuple[int, ...]]], piece_major: Mapping[str, int] | None = None):
        self.piece_major = dict(piece_major or {})
        self.slots: list[Slot] = []
        offset = 0
        for name, shape in shapes:
            self.slots.append(Slot(name, tuple(shape), offset))
            offset += self.slots[-1].numel
        self.width = offset

    def stack(self, runs: Sequence[Mapping[str, Tensor]]) -> Tensor:
        """(R, width) from each run's solo {name: tensor}."""
        return torch.stack([torch.cat([self._stored(s.name, run[s.name].detach()).reshape(-1) for s in self.slots])
                            for run in runs])

    def _stored(self, name: str, t: Tensor) -> Tensor:
        return piece_major(t, self.piece_major[name]) if name in self.piece_major else t

    def solo(self, name: str, t: Tensor) -> Tensor:
        """A stored parameter of one run back in the solo module's layout."""
        return unit_major(t, self.piece_major[name]) if name in self.piece_major else t

    def views(self, flat: Tensor) -> dict[str, Tensor]:
        """{name: (R, *shape)} views of ``flat`` (R, width): no copies."""
        r = flat.shape[0]
        return {s.name: flat[:, s.offset:s.offset + s.numel].view(r, *s.shape) for s in self.slots}


class Player:
    """One side of the game for R runs (the discriminator, or the generators): parameters and Adam."""

    def __init__(self, layout: FlatLayout, param: Tensor, lrs: Sequence[float], betas: Sequence[tuple[float, float]],
                 adam_kernel: str | None = None):
        self.layout = layout
        self.adam = RunAdam(param, [(s.offset, s.numel) for s in layout.slots], lrs, betas, adam_kernel)

    @property
    def param(self) -> Tensor:
        return self.adam.param

    def views(self) -> dict[str, Tensor]:
        return self.layout.views(self.param)

    def leaves(self) -> dict[str, Tensor]:
        """Views of the parameters that autograd differentiates with respect to (one gradient per view)."""
        return {name: v.requires_grad_() for name, v in self.layout.views(self.param.detach()).items()}

    def grads(self, loss: Tensor, leaves: Mapping[str, Tensor], retain_graph: bool = False) -> tuple[Tensor, ...]:
        """d(sum of the runs' losses)/d(each leaf), (R, *shape): each run's own gradient."""
        return torch.autograd.grad(loss.sum(), list(leaves.values()), retain_graph=retain_graph)

    def run_tensors(self, r: int) -> dict[str, Tensor]:
        """Run ``r``'s parameters by solo name, as fresh CPU tensors (not views of the whole group)."""
        return {name: self.layout.solo(name, v[r].detach().cpu()).clone() for name, v in self.views().items()}
