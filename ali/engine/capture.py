"""Run the group step eagerly, or record it once as a CUDA graph and replay it (``torch.cuda.graphs``).

The captured step is the very function the eager path calls (``GroupStep.__call__``): it reads and
writes only tensors it owns, so replaying the graph is a step. As the PyTorch docs ask, a few real
steps run first on a side stream (warm-up: lazy initialisation of cuBLAS, cuDNN and autograd happens
there, not inside the capture). Capture itself executes nothing. Each run's noise generator is
registered with the graph, so every replay draws fresh noise and advances the generator as an eager
step would. If capture fails, the runner falls back to eager steps and says why in ``engine``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import torch

WARMUP_STEPS = 3


class StepRunner:
    """Calls ``step`` once per training step: eagerly, or (``capture``) by replaying a CUDA graph of it."""

    def __init__(self, step: Callable[[], None], generators: Sequence[torch.Generator], capture: bool,
                 warmup_steps: int = WARMUP_STEPS):
        self.step, self.generators, self.capture, self.warmup_steps = step, list(generators), capture, warmup_steps
        self.graph: torch.cuda.CUDAGraph | None = None
        self.warm = 0
        self.engine = "group-captured" if capture else "group-eager"

    def __call__(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        elif not self.capture:
            self.step()
        elif self.warm < self.warmup_steps:
            self._side_stream_step()
            self.warm += 1
        else:
            self.graph = self._record()
            if self.graph is None:
                self.step()
            else:
                self.graph.replay()

    def _side_stream_step(self) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.step()
        torch.cuda.current_stream().wait_stream(side)

    def _record(self) -> torch.cuda.CUDAGraph | None:
        """The step as a CUDA graph; None (and eager from now on) if it cannot be captured."""
        states = [gen.get_state() for gen in self.generators]
        try:
            graph = torch.cuda.CUDAGraph()
            for gen in self.generators:
                graph.register_generator_state(gen)
            with torch.cuda.graph(graph):
                self.step()
            return graph
        except Exception as err:  # any capture failure: an unsupported op, a sync, an old driver
            self.capture = False
            self.engine = f"group-eager (capture failed: {type(err).__name__}: {err})"
            print(f"[ali.engine] {self.engine}", file=sys.stderr, flush=True)
            torch.cuda.synchronize()
            for gen, state in zip(self.generators, states):
                gen.set_state(state)
            return None
