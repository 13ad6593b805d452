"""What every model shares: how its step runs (``StepOptions``), optimisers, the update rules, and the registry.

A model is an ``nn.Module`` that owns its networks and optimisers and exposes
``train_step(x, **inputs) -> {name: loss}``; the one training loop (``ali.train.loop``) needs nothing else.
``inputs`` are the step's other tensors, computed outside the step: ``step_inputs`` (the K+1 models'
labelled batch) and ``step_noise`` (the first forward pass's noise, drawn from the global RNG in the
order the pass uses it). ``losses`` is a pure function of (parameters, batch, noise), and a step of its
tensor inputs, so it can be captured in a CUDA graph. A noise input left out (an alternating update's
second pass, a direct call) is drawn inside, where it always was: the same numbers either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from ali.optim import AdamConfig, make_adam

UPDATES = ("simultaneous", "alternating")
PRECISIONS = ("fp32", "tf32", "bf16")
CAPTURE_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class StepOptions:
    """How a training step executes, fixed when the model is built.

    precision: 'fp32' (IEEE fp32 matmuls and convolutions), 'tf32' (TF32 tensor cores for fp32
    matmuls/convolutions, CUDA only) or 'bf16' (bf16 autocast of the forward pass, CUDA only).
    channels_last: 4-d weights and image batches in NHWC layout. capture: run the whole step as one
    CUDA graph ('auto': when the data is on a GPU). ``section`` is the config section the options
    came from, named in errors. Which of them a device allows is ``ali.train.runtime.execution``'s call.
    """

    precision: str = "fp32"
    channels_last: bool = False
    capture: str = "auto"
    section: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"{self.key('precision')} must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if self.capture not in CAPTURE_MODES:
            raise ValueError(f"{self.key('capture')} must be one of {list(CAPTURE_MODES)}, got {self.capture!r}")

    @classmethod
    def from_spec(cls, spec: Mapping, capture: str | None = None, channels_last: bool | None = None) -> StepOptions:
        """The precision a run spec names, with the run context's capture and layout (execution
        choices, never in a spec). An older spec's ``amp: true`` reads as bf16, and its own
        ``capture`` / ``channels_last`` stand where no context value is given."""
        precision = spec.get("precision", "bf16" if spec.get("amp") else "fp32")
        capture = spec.get("capture", "auto") if capture is None else capture
        channels_last = bool(spec.get("channels_last", False)) if channels_last is None else channels_last
        return cls(precision, channels_last, capture, section=spec.get("experiment", ""))

    def key(self, name: str) -> str:
        """The config key of option ``name``, for messages."""
        return f"config key '{self.section}.{name}'" if self.section else f"step option {name!r}"


@dataclass(frozen=True)
class AdamKernel:
    """Which Adam implementation steps the weights: PyTorch's default (CPU), fused CUDA kernels, and
    capturable ones (the learning rate then lives in a device tensor, so a schedule can change it
    between graph replays)."""

    fused: bool = False
    capturable: bool = False

    @classmethod
    def for_device(cls, device: torch.device, capture: bool) -> AdamKernel:
        return cls(fused=True, capturable=capture) if device.type == "cuda" else cls()


class Model(nn.Module):
    """Base class: networks are submodules, optimisers live in ``self.optimizers``."""

    name: ClassVar[str]
    has_encoder: ClassVar[bool] = True
    loss_names: ClassVar[tuple[str, ...]]  # the keys of train_step's output, in order

    def __init__(self, options: StepOptions | None = None) -> None:
        super().__init__()
        self.options = options or StepOptions()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.adam: AdamConfig | None = None
        self.adam_kernel = AdamKernel()

    @property
    def channels_last(self) -> bool:
        return self.options.channels_last

    def autocast(self, x: torch.Tensor):
        """bf16 autocast for the forward pass when the precision is bf16 and x is on a GPU. No weight
        cache during CUDA-graph capture (the cache would outlive the captured region)."""
        if self.options.precision != "bf16" or x.device.type != "cuda":
            return nullcontext()
        return torch.autocast("cuda", dtype=torch.bfloat16,
                              cache_enabled=not torch.cuda.is_current_stream_capturing())

    def train_step(self, x: torch.Tensor, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def step_inputs(self, step: int) -> dict[str, torch.Tensor]:
        """The step's tensors besides the data batch, a pure function of the step index; none by default."""
        return {}

    def on_step(self, step: int) -> None:
        """Called by the loop before each step, outside the step (per-step schedules); a no-op by default."""

    # Noise: what one forward pass draws, by name, in the order it draws it.
    noise_names: ClassVar[tuple[str, ...]] = ()  # the keys of noise_shapes
    forward_passes: int = 1  # forward passes per training step

    def noise_shapes(self, x: torch.Tensor, **inputs: torch.Tensor) -> dict[str, tuple[int, ...]]:
        """One forward pass's noise, name -> shape, in draw order; none by default."""
        return {}

    def noise(self, x: torch.Tensor, given: Mapping[str, torch.Tensor | None], **inputs: torch.Tensor
              ) -> dict[str, torch.Tensor]:
        """One forward pass's noise: each tensor in ``given``, the others drawn now from the global RNG, in order."""
        return {name: given[name] if given.get(name) is not None else torch.randn(shape, device=x.device)
                for name, shape in self.noise_shapes(x, **inputs).items()}

    def step_noise(self, x: torch.Tensor, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The step's first forward pass's noise, as ``train_step`` inputs, drawn now from the global RNG.

        A second pass's noise (``alternating``; its inputs would be named ``<name>_1``) is left to the
        step: drawn there, after the first pass's dropout masks, it keeps the global stream's order.
        """
        return self.noise(x, {}, **inputs)

    # Evaluation interface (call under torch.no_grad() in eval mode).
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} has no encoder")

    def prior(self, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=device)

    # Optimisers.
    def optimized_parameters(self) -> dict[str, list[nn.Parameter]]:
        """The parameters of each optimiser, by name."""
        raise NotImplementedError

    def configure_optimizers(self, adam: AdamConfig, kernel: AdamKernel | None = None) -> None:
        """One Adam per entry of ``optimized_parameters``; build it after the model is on its device
        when ``kernel`` is fused or capturable."""
        self.adam, self.adam_kernel = adam, kernel or AdamKernel()
        self.optimizers = {name: make_adam(params, adam, fused=self.adam_kernel.fused or None,
                                           capturable=self.adam_kernel.capturable)
                           for name, params in self.optimized_parameters().items()}

    def use_adam_kernel(self, kernel: AdamKernel) -> None:
        """Rebuild the optimisers with another Adam implementation (before any step: state is dropped)."""
        if kernel != self.adam_kernel:
            if self.adam is None:
                raise RuntimeError(f"{self.name}: configure_optimizers was never called")
            self.configure_optimizers(self.adam, kernel)

    def set_learning_rate(self, lr: float) -> None:
        """Every group's learning rate; a device-tensor rate is filled in place (no host sync, and a
        captured step reads the new value)."""
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                if torch.is_tensor(group["lr"]):
                    group["lr"].fill_(lr)
                else:
                    group["lr"] = lr

    def optimizer_state(self) -> dict:
        return {k: opt.state_dict() for k, opt in self.optimizers.items()}

    def load_optimizer_state(self, state: dict) -> None:
        """Saved moments, step counts and rates, run by this model's own Adam implementation: a
        checkpoint from another device resumes with this device's kernels, and a device-tensor rate
        stays the same tensor (a captured step holds it)."""
        for name, opt in self.optimizers.items():
            own = [{key: group[key] for key in _KERNEL_KEYS} for group in opt.param_groups]
            opt.load_state_dict(state[name])
            for group, kernel in zip(opt.param_groups, own):
                _keep_kernel(opt, group, kernel)


_KERNEL_KEYS = ("lr", "foreach", "fused", "capturable")


def _keep_kernel(opt: torch.optim.Optimizer, group: dict, kernel: dict) -> None:
    """Put back a loaded group's implementation flags and rate tensor (holding the saved rate), and
    move its step counts where that implementation keeps them (fused/capturable: on the device)."""
    saved_lr = float(group["lr"])
    group.update(kernel)
    if torch.is_tensor(kernel["lr"]):
        kernel["lr"].fill_(saved_lr)
    else:
        group["lr"] = saved_lr
    on_device = bool(group["fused"] or group["capturable"])
    for p in group["params"]:
        state = opt.state.get(p, {})
        if torch.is_tensor(state.get("step")):
            state["step"] = state["step"].to(p.device, torch.float32) if on_device else state["step"].cpu()


def noise_key(name: str, forward_pass: int) -> str:
    """The step input that carries noise ``name`` of forward pass ``forward_pass`` (0-based)."""
    return name if forward_pass == 0 else f"{name}_{forward_pass}"


def pass_inputs(model: Model, inputs: Mapping[str, torch.Tensor], forward_pass: int) -> dict[str, torch.Tensor]:
    """The inputs of one forward pass: the step's other inputs, and that pass's noise under its plain names."""
    noise = {noise_key(name, k) for name in model.noise_names for k in range(model.forward_passes)}
    own = {name: inputs[noise_key(name, forward_pass)] for name in model.noise_names
           if noise_key(name, forward_pass) in inputs}
    return {**{k: v for k, v in inputs.items() if k not in noise}, **own}


class AdversarialModel(Model):
    """Two players: the discriminator (D) and the generators (G: decoder, and encoder if any).

    ``simultaneous`` (the released code): one forward pass; D moves along -grad L_D and G along
    -grad L_G, both gradients taken at the same parameters. ``alternating`` is a deviation,
    offered as a named option: D steps first, then a fresh forward pass for G's step.
    """

    loss_names = ("loss_d", "loss_g")

    def __init__(self, update: str, options: StepOptions | None = None) -> None:
        super().__init__(options)
        if update not in UPDATES:
            raise ValueError(f"update must be one of {UPDATES}, got {update!r}")
        self.update = update
        self.forward_passes = 1 if update == "simultaneous" else 2

    def d_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())

    def g_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def optimized_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {"d": self.d_parameters(), "g": self.g_parameters()}

    def losses(self, x: torch.Tensor, **inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_D, L_G) from one forward pass."""
        raise NotImplementedError

    def train_step(self, x: torch.Tensor, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        d_params, g_params = self.d_parameters(), self.g_parameters()
        if self.update == "simultaneous":
            with self.autocast(x):
                loss_d, loss_g = self.losses(x, **pass_inputs(self, inputs, 0))
            _apply_grads(d_params, torch.autograd.grad(loss_d, d_params, retain_graph=True))
            _apply_grads(g_params, torch.autograd.grad(loss_g, g_params))
            self.optimizers["d"].step()
            self.optimizers["g"].step()
        else:
            with self.autocast(x):
                loss_d, _ = self.losses(x, **pass_inputs(self, inputs, 0))
            _apply_grads(d_params, torch.autograd.grad(loss_d, d_params))
            self.optimizers["d"].step()
            with self.autocast(x):
                _, loss_g = self.losses(x, **pass_inputs(self, inputs, 1))
            _apply_grads(g_params, torch.autograd.grad(loss_g, g_params))
            self.optimizers["g"].step()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}


class SingleObjectiveModel(Model):
    """One loss, one optimiser over every trainable parameter."""

    loss_names = ("loss",)

    def loss(self, x: torch.Tensor, **inputs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def optimized_parameters(self) -> dict[str, list[nn.Parameter]]:
        return {"model": [p for p in self.parameters() if p.requires_grad]}

    def train_step(self, x: torch.Tensor, **inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        with self.autocast(x):
            loss = self.loss(x, **inputs)
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}


class FrozenDecoderMixin:
    """For inference learned after the fact: the decoder is fixed, in inference mode, never updated."""

    def freeze_decoder(self) -> None:
        self.decoder.requires_grad_(False)
        self.decoder.eval()

    def train(self, mode: bool = True):  # keep the frozen decoder's BN on population statistics
        super().train(mode)
        self.decoder.eval()
        return self


def _apply_grads(params: list[nn.Parameter], grads: tuple[torch.Tensor, ...]) -> None:
    for p, g in zip(params, grads):
        p.grad = g


MODELS: dict[str, Callable[..., Model]] = {}


def register(cls):
    MODELS[cls.name] = cls
    return cls


def build_model(name: str, **kwargs) -> Model:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    return MODELS[name](**kwargs)
