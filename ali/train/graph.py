"""The one CUDA-graph runner: a training step run eagerly, or recorded once as a CUDA graph and replayed.

Solo runs and groups use it alike. A step is a function of tensors it owns: the solo loop copies
each step's batch into fixed input buffers (``inputs``), a group step reads only its own state.
With capture, the first call (PyTorch's recipe, ``torch.cuda.graphs``):
1. snapshots the training state (weights, optimiser state, RNG states and any registered generator);
2. runs ``WARMUP_STEPS`` eager steps on a side stream (lazy initialisation of cuBLAS, cuDNN, autograd
   and optimiser state happens there, not inside the capture);
3. records one step into a graph, registering each generator so every replay draws fresh noise;
4. restores the snapshot in place (the graph holds the tensors' addresses), so the warm-up leaves
   no trace: replay 0 is the step an eager loop would take.
If any of it fails, the state is restored, the step runs eagerly from then on, and ``engine`` says
why. ``engine`` says captured only once a replay has happened.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

WARMUP_STEPS = 3  # eager steps on a side stream before capture

Inputs = Mapping[str, torch.Tensor]


class StepRunner:
    """Calls ``step(inputs)`` once per training step: eagerly, or (``capture``) by replaying its graph.

    ``snapshot()`` returns the training state and ``restore(saved)`` puts it back in place; the
    runner adds the generators' states to them. ``label`` prefixes the engine name ("group-").
    """

    def __init__(self, step: Callable[[Inputs], Any], *, capture: bool, snapshot: Callable[[], Any],
                 restore: Callable[[Any], None], generators: Sequence[torch.Generator] = (), label: str = "",
                 name: str = "training step", warmup_steps: int = WARMUP_STEPS):
        self.step, self.capture, self.label, self.name = step, capture, label, name
        self.snapshot, self.restore, self.generators = snapshot, restore, list(generators)
        self.warmup_steps = warmup_steps
        self.graph: torch.cuda.CUDAGraph | None = None
        self.buffers: dict[str, torch.Tensor] = {}
        self.outputs: Any = None
        self.replays = 0
        self.failure: str | None = None

    @property
    def engine(self) -> str:
        """What ran: ``captured`` once a replay happened, else ``eager`` (with the capture failure, if any)."""
        if self.replays:
            return f"{self.label}captured"
        if self.failure is not None:
            return f"{self.label}eager (capture failed: {self.failure})"
        return f"{self.label}eager"

    def __call__(self, inputs: Inputs | None = None) -> Any:
        inputs = inputs or {}
        if not self.capture:
            return self.step(inputs)
        if self.graph is None:
            self.buffers = {name: t.clone() for name, t in inputs.items()}  # clone keeps the memory format
            if not self._record():
                self.capture = False
                return self.step(inputs)
        if inputs.keys() != self.buffers.keys():
            raise KeyError(f"step inputs {sorted(inputs)} differ from the first step's {sorted(self.buffers)}")
        for name, t in inputs.items():
            self.buffers[name].copy_(t)
        self.graph.replay()
        self.replays += 1
        return self.outputs

    def _record(self) -> bool:
        """Warm up, capture and restore; False (state restored, reason kept) if the step cannot be captured."""
        saved = self.snapshot(), [gen.get_state() for gen in self.generators]
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(self.warmup_steps):
                    self.step(self.buffers)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            for gen in self.generators:
                graph.register_generator_state(gen)
            with torch.cuda.graph(graph):
                outputs = self.step(self.buffers)
            self.graph, self.outputs = graph, outputs
            return True
        except Exception as err:  # an unsupported op, a sync, an old driver: train eagerly rather than not at all
            first_line = next(iter(str(err).strip().splitlines()), "")
            self.failure = f"{type(err).__name__}: {first_line}"[:300]
            warnings.warn(f"CUDA-graph capture of the {self.name} failed ({self.failure}); training eagerly instead",
                          RuntimeWarning, stacklevel=3)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            return False
        finally:
            self.restore(saved[0])
            for gen, state in zip(self.generators, saved[1]):
                gen.set_state(state)
