"""The one checkpoint codec, for a solo run and a group alike.

A checkpoint holds only tensors and plain numbers (it loads with ``torch.load(weights_only=True)``):
the step, the training time so far, every RNG state, the state of whatever trains (a model and its
optimisers, or a group) and a guard: the hash of the config it belongs to and the device kind that
wrote it. It is written atomically (``ali.train.files``), so the previous checkpoint stays loadable
until the new one is complete. Reading checks the file, the guard and that every saved tensor fits
the state it is to replace before anything is restored; each refusal is one ``CheckpointError``
line naming the file and what to do, with the library's own error kept as its ``__cause__``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ali.train.files import UnusableFileError, atomic_write

CHECKPOINT = "checkpoint.pt"
FORMAT = "ali-checkpoint-2"
KEYS = ("format", "owner", "device", "step", "elapsed", "rng", "state")


class CheckpointError(UnusableFileError):
    """A checkpoint that cannot be used; the message says how to proceed."""


# -------------------------------------------------------------------------------------- RNG states
def rng_state(device: torch.device) -> dict:
    """Every RNG state as tensors and numbers: Python's, NumPy's, torch's CPU one and, on CUDA, the device's."""
    np_state = np.random.get_state(legacy=False)  # MT19937: 624 32-bit keys and a position
    version, py_keys, py_gauss = random.getstate()
    state = {"torch": torch.get_rng_state(),
             "numpy": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                       "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                       "gauss": float(np_state["gauss"])},
             "python": {"version": version, "state": torch.tensor(py_keys, dtype=torch.int64), "gauss": py_gauss}}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Mapping, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state({"bit_generator": "MT19937", "has_gauss": np_state["has_gauss"], "gauss": np_state["gauss"],
                         "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]}})
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


# ----------------------------------------------------------------------------------- write and read
def save_checkpoint(path: Path, state: Mapping, *, owner: str, device: torch.device, step: int,
                    elapsed: float) -> None:
    """``state`` (CPU tensors and numbers) with the step, time, RNG states and the guard, atomically."""
    payload = {"format": FORMAT, "owner": owner, "device": device.type, "step": step, "elapsed": elapsed,
               "rng": rng_state(device), "state": dict(state)}
    atomic_write(Path(path), lambda f: torch.save(payload, f))


def read_checkpoint(path: Path, *, owner: str, device: torch.device, what: str = "run") -> dict:
    """The checkpoint at ``path`` if it belongs to ``owner`` and to ``device``'s kind; nothing is restored.

    ``what`` names the thing that resumes in messages ("run", "group of 4 runs").
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or set(KEYS) - set(ckpt):
            raise ValueError(f"not a {FORMAT} checkpoint")
    except Exception as err:  # truncated, not a torch file, another format: the library's words go in __cause__
        raise CheckpointError(f"checkpoint {path} is unreadable: truncated or not a checkpoint of this suite; "
                              f"delete it to restart this {what} from step 0") from err
    if ckpt["owner"] != owner:
        raise CheckpointError(f"checkpoint {path} belongs to another config (hash {ckpt['owner']}), not this "
                              f"{what}'s ({owner}); delete it to train this {what} afresh")
    if ckpt["device"] != device.type:
        raise CheckpointError(f"checkpoint {path} was written by a {ckpt['device']} run, but this {what} trains on "
                              f"{device.type}; resume it with --device {ckpt['device']}, or delete it to restart "
                              f"this {what} from step 0")
    check_rng_fits(path, ckpt["rng"], device)
    return ckpt


def restore_rng(ckpt: Mapping, device: torch.device) -> None:
    set_rng_state(ckpt["rng"], device)


def check_fits(path: Path, saved: Mapping, current: Mapping, where: str = "") -> None:
    """Every tensor of ``saved`` that ``current`` also has must have its shape and dtype, so a restore
    either succeeds whole or is refused before anything changed."""
    for key, value in saved.items():
        if key not in current:
            continue
        mine, name = current[key], f"{where}.{key}" if where else str(key)
        if isinstance(value, Mapping) and isinstance(mine, Mapping):
            check_fits(path, value, mine, name)
        elif torch.is_tensor(value) and torch.is_tensor(mine) and (value.shape, value.dtype) != (mine.shape, mine.dtype):
            raise CheckpointError(f"checkpoint {path} does not fit this run ({name}: saved {tuple(value.shape)} "
                                  f"{value.dtype}, here {tuple(mine.shape)} {mine.dtype}); delete it to restart "
                                  f"from step 0")


def check_rng_fits(path: Path, saved: Mapping, device: torch.device) -> None:
    here = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        here["cuda"] = torch.cuda.get_rng_state(device)
    if set(here) - set(saved):
        raise CheckpointError(f"checkpoint {path} has no RNG state for {device.type}; delete it to restart from step 0")
    check_fits(path, {k: saved[k] for k in here}, here, "rng")
