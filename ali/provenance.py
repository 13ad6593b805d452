"""Where a number came from: code version, package versions, device, threads."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import torch

import ali

PACKAGES = ("torch", "torchvision", "numpy", "scikit-learn", "pandas", "matplotlib", "snakemake")


def config_hash(cfg: dict) -> str:
    """First 12 hex digits of the SHA-256 of the canonical JSON of ``cfg``."""
    blob = json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


@lru_cache(maxsize=1)
def code_version() -> str:
    """``git describe --always --dirty`` of the checkout the package runs from, else the package version."""
    root = Path(ali.__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return f"{ali.__version__}+g{out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError):
        pass
    return ali.__version__


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}"


def provenance(device: torch.device) -> dict:
    return {
        "code_version": code_version(),
        "packages": package_versions(),
        "device": device_name(device),
        "threads": torch.get_num_threads(),
    }
