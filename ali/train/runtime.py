"""Where and how a run executes: seeding, the device, the arithmetic, and whether steps are captured.

The one place that checks device x precision x capture, for a solo run and a group alike. None of
these choices is part of a run's spec hash except precision (it changes the numbers).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from ali.models.base import CAPTURE_MODES, PRECISIONS


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` (CUDA if present), ``cpu``, ``cuda`` or ``cuda:N``; a CUDA device becomes the current
    one, so side streams, graphs and RNG snapshots use it rather than device 0."""
    if str(name) == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {str(name)!r} requested but CUDA is not available; use --device cpu or auto")
    device = torch.device(name)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
    return device


def execution(precision: str, capture: str, device: torch.device, where: str = "") -> bool:
    """Check a run's precision and capture mode against ``device``; whether to capture its steps.

    tf32, bf16 and capture 'on' need CUDA; ``auto`` captures on CUDA only. ``where`` names the config
    section the options came from, for messages.
    """
    def key(name: str) -> str:
        return f"config key '{where}.{name}'" if where else f"step option {name!r}"

    if precision not in PRECISIONS:
        raise ValueError(f"{key('precision')} must be one of {list(PRECISIONS)}, got {precision!r}")
    if capture not in CAPTURE_MODES:
        raise ValueError(f"{key('capture')} must be one of {list(CAPTURE_MODES)}, got {capture!r}")
    if device.type != "cuda":
        if precision != "fp32":
            raise ValueError(f"{key('precision')} is {precision!r}, which needs a CUDA device; training runs on "
                             f"{device.type}: set it to 'fp32' or train on a GPU")
        if capture == "on":
            raise ValueError(f"{key('capture')} is 'on', but CUDA graphs need a CUDA device; training runs on "
                             f"{device.type}: set it to 'auto' or 'off'")
    return capture == "on" or (capture == "auto" and device.type == "cuda")


@contextmanager
def fp32_math(precision: str, device: torch.device) -> Iterator[None]:
    """On CUDA, fp32 matmuls and convolutions in TF32 for precision 'tf32' and in IEEE fp32 otherwise
    (PyTorch's default lets cuDNN convolutions use TF32); restored on exit. Nothing elsewhere.
    Uses the ``fp32_precision`` flags: PyTorch refuses to read the legacy ``allow_tf32`` flags once
    both kinds have been set."""
    if device.type != "cuda":
        yield
        return
    flags = (torch.backends.cuda.matmul, torch.backends.cudnn.conv)
    before = [f.fp32_precision for f in flags]
    for f in flags:
        f.fp32_precision = "tf32" if precision == "tf32" else "ieee"
    try:
        yield
    finally:
        for f, value in zip(flags, before):
            f.fp32_precision = value
