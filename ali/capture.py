"""How the loop runs one training step: eagerly, or replayed from a CUDA graph.

A captured step is the model's own ``train_step`` (forward, both gradients, both optimiser steps,
BN statistics), recorded once with ``torch.cuda.graph`` and replayed each step after the step's
tensors are copied into fixed input buffers. ``StaticStep`` is that calling convention without the
graph: the function captured on CUDA is exactly the one it runs, so CPU tests can check that a step
reads nothing but its buffers. Noise drawn inside the step comes from the default CUDA generator,
which ``torch.cuda.graph`` registers, so every replay draws fresh numbers and checkpoints keep
the generator's state.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ali.models.base import Model

WARMUP_STEPS = 3  # eager steps on a side stream before capture (PyTorch's recipe: lazy state, cuDNN choices)


class EagerStep:
    """``model.train_step`` called on each step's tensors."""

    def __init__(self, model: Model, engine: str = "eager"):
        self.model, self.engine = model, engine

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.model.train_step(**inputs)


class StaticStep:
    """Copies each step's tensors into fixed buffers, then runs ``train_step`` on the buffers."""

    engine = "eager (static buffers)"

    def __init__(self, model: Model, example: Mapping[str, torch.Tensor]):
        self.model = model
        self.buffers = {name: t.clone() for name, t in example.items()}  # clone keeps the memory format

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if inputs.keys() != self.buffers.keys():
            raise KeyError(f"step inputs {sorted(inputs)} differ from the first step's {sorted(self.buffers)}")
        for name, t in inputs.items():
            self.buffers[name].copy_(t)
        return self.run()

    def run(self) -> dict[str, torch.Tensor]:
        return self.model.train_step(**self.buffers)


class CapturedStep(StaticStep):
    """The step as one CUDA graph: warmed up on a side stream, captured, then replayed.

    Warm-up and capture leave no trace: weights, BN statistics, optimiser state and RNG states are
    put back in place afterwards (the graph holds their addresses), so step 0 of the replays is the
    step the eager loop would take. The outputs are the graph's own tensors, rewritten each replay.
    """

    engine = "captured"

    def __init__(self, model: Model, example: Mapping[str, torch.Tensor], warmup: int = WARMUP_STEPS):
        super().__init__(model, example)
        saved = snapshot(model)
        try:
            self.graph, self.outputs = self.capture(warmup)
        finally:
            restore(model, saved)

    def capture(self, warmup: int) -> tuple[torch.cuda.CUDAGraph, dict[str, torch.Tensor]]:
        """``warmup`` eager steps on a side stream (lazy optimiser state, library handles), then one
        step recorded into a graph (recorded, not run)."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                StaticStep.run(self)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = StaticStep.run(self)
        return graph, outputs

    def run(self) -> dict[str, torch.Tensor]:
        self.graph.replay()
        return self.outputs


def make_step_runner(model: Model, example: Mapping[str, torch.Tensor], capture: bool,
                     captured: type[StaticStep] = CapturedStep) -> EagerStep | StaticStep:
    """A captured step when asked for and capture succeeds; otherwise eager, with one warning that
    names the reason, which ``engine`` also records."""
    if not capture:
        return EagerStep(model)
    try:
        return captured(model, example)
    except Exception as err:  # any failure to capture: train eagerly rather than not at all
        first_line = next(iter(str(err).strip().splitlines()), "")
        reason = f"{type(err).__name__}: {first_line}"[:300]
        warnings.warn(f"CUDA-graph capture of the {model.name} training step failed ({reason}); "
                      f"training eagerly instead", RuntimeWarning, stacklevel=2)
        return EagerStep(model, engine=f"eager (capture failed: {reason})")


# ------------------------------------------------------------------ state kept across warm-up/capture
@dataclass
class TrainingState:
    """Copies of what a training step changes: weights and buffers, optimiser state, RNG states."""

    module: dict[str, torch.Tensor]
    optimizers: list[dict[torch.Tensor, dict[str, Any]]]
    cpu_rng: torch.Tensor
    cuda_rng: torch.Tensor | None


def snapshot(model: Model) -> TrainingState:
    on_cuda = any(p.is_cuda for p in model.parameters())
    return TrainingState(
        module={k: v.detach().clone() for k, v in model.state_dict().items()},
        optimizers=[{p: {k: v.clone() if torch.is_tensor(v) else v for k, v in s.items()} for p, s in opt.state.items()}
                    for opt in model.optimizers.values()],
        cpu_rng=torch.get_rng_state(),
        cuda_rng=torch.cuda.get_rng_state() if on_cuda else None)


def restore(model: Model, saved: TrainingState) -> None:
    """Back to ``saved`` in place: every tensor keeps its storage. Optimiser state created since the
    snapshot is zeroed, which Adam reads as no state (step 0, zero moments)."""
    model.load_state_dict(saved.module)  # copies into the existing parameters and buffers
    for opt, before in zip(model.optimizers.values(), saved.optimizers, strict=True):
        for p, state in opt.state.items():
            old = before.get(p)
            for key, value in state.items():
                if not torch.is_tensor(value):
                    state[key] = old[key] if old is not None else type(value)()
                elif old is not None:
                    value.copy_(old[key])
                else:
                    value.zero_()
    torch.set_rng_state(saved.cpu_rng)
    if saved.cuda_rng is not None:
        torch.cuda.set_rng_state(saved.cuda_rng)
