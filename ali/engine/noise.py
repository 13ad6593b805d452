"""Counter-based Gaussian noise: a run's noise is a function of (its seed, the step, the pass, the index).

No generator state: step ``s``'s noise is computed from integers, for every run of a group at once in
a fixed number of tensor ops whatever the group size, so a captured step needs no generator
registered and a checkpoint no generator state, and a run's noise does not depend on its group.

Each value: a 32-bit integer hash (one of Chris Wellons' ``hash-prospector`` finds, multipliers
0x21f0aaad and 0x735a2d97; three rounds over the value's counter, the run's two key words and the
step) gives two 24-bit uniforms, and Box-Muller's ``sqrt(-2 ln u1) cos(2 pi u2)`` turns them into a
standard normal. The hash runs in int64 tensor ops on values below 2**32 and multipliers below 2**31,
so no product overflows and CPU and CUDA compute the same integers; ``log``/``cos`` round per device.
Each run's row is padded to a multiple of ``LANES`` so that its elements meet the same CPU vector
lanes in any group. About fifty ops a forward pass, for any number of runs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ali.engine.batched import LANES

NOISE_KEY = 0x4E4F495345  # "NOISE": the noise stream's key beside the run's seed
MASK32 = 0xFFFFFFFF
PASS_STRIDE = 1 << 24  # counters of forward pass k start at k * PASS_STRIDE (a pass draws fewer values)


def noise_keys(seeds: list[int]) -> Tensor:
    """(R, 2) int64: each run's two 32-bit key words, a function of its seed apart from its init stream."""
    words = [np.random.SeedSequence([s, NOISE_KEY]).generate_state(2, dtype=np.uint32) for s in seeds]
    return torch.tensor(np.array(words, dtype=np.int64).reshape(len(seeds), 2))


def mix32(x: Tensor) -> Tensor:
    """A bijection of [0, 2**32) with good avalanche; x int64 in [0, 2**32), so x * m < 2**63."""
    x = x ^ (x >> 16)
    x = (x * 0x21F0AAAD) & MASK32
    x = x ^ (x >> 15)
    x = (x * 0x735A2D97) & MASK32
    return x ^ (x >> 15)


def padded(n: int) -> int:
    return n + (-n % LANES)


def counter_normal(keys: Tensor, step: Tensor, counters: Tensor) -> Tensor:
    """Standard normals (R, len(counters)) for runs ``keys`` (R, 2), step ``step`` (int64 scalar tensor).

    ``counters`` (1, n) int64 names each value; ``len`` should be a multiple of LANES (see the module doc).
    """
    h = mix32(counters ^ keys[:, :1])                  # (R, n)
    h = mix32(h ^ (keys[:, 1:] ^ (step & MASK32)))     # (R, 1) column: the run's second word and the step
    g = mix32(h ^ 0x9E3779B9)                          # the second uniform's word
    u1 = ((h >> 8) + 1).to(torch.float32) * 2.0**-24   # (0, 1]: log is finite
    u2 = (g >> 8).to(torch.float32) * 2.0**-24         # [0, 1)
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * torch.pi) * u2)


class RunNoise:
    """One forward pass's noise for R runs: ``shapes`` (rows, cols) per input, drawn in that order."""

    def __init__(self, seeds: list[int], shapes: list[tuple[int, int]], device: torch.device):
        self.keys = noise_keys(seeds).to(device)
        self.shapes = list(shapes)
        self.sizes = [rows * cols for rows, cols in shapes]
        n = sum(self.sizes)
        if n > PASS_STRIDE:
            raise ValueError(f"a forward pass draws {n} noise values, more than the counter space {PASS_STRIDE}")
        self.counters = torch.arange(padded(n), dtype=torch.int64, device=device).unsqueeze(0)  # (1, n padded)

    def __call__(self, step: Tensor, forward_pass: int = 0) -> list[Tensor]:
        """Each input's noise, (R, rows, cols), for step ``step`` and pass ``forward_pass``: views of one draw."""
        values = counter_normal(self.keys, step, self.counters + forward_pass * PASS_STRIDE)
        r = values.shape[0]
        return [chunk.view(r, *shape) for chunk, shape in zip(values[:, :sum(self.sizes)].split(self.sizes, dim=1),
                                                                self.shapes)]
