"""What the suite knows about each image dataset without reading a file or importing torchvision.

Planning a run, checking a config and the CLI's choices need only this registry: names, splits,
sizes, classes. The loaders live in ``ali.data.images`` (which imports torchvision and this
registry), so a job that never reads an image never pays torchvision's import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch


class DatasetMissingError(FileNotFoundError):
    """A dataset's files are missing or fail their MD5 check; the message says what to put where."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    image_size: int
    channels: int
    sizes: Mapping[str, int]  # images per split in the full, published dataset
    n_classes: int  # 0: no class labels are returned (labels are all -1)
    note: str = ""

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.sizes)


DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    DatasetInfo("svhn", 32, 3, {"train": 73_257, "test": 26_032, "extra": 531_131}, 10,
                "labels are the digit 0-9 (the .mat files' 10 for digit 0 is mapped to 0)"),
    DatasetInfo("cifar10", 32, 3, {"train": 50_000, "test": 10_000}, 10),
    DatasetInfo("celeba", 64, 3, {"train": 162_770, "valid": 19_867, "test": 19_962}, 0,
                "aligned faces resized to 64x78 and cropped to 64x64, as the released code's Fuel converter"),
    DatasetInfo("tiny_imagenet", 64, 3, {"train": 100_000, "valid": 10_000, "test": 10_000}, 200,
                "OUR stand-in (cs231n Tiny ImageNet 200) for the paper's 64x64 center-cropped ImageNet; "
                "'test' is unlabelled"),
    DatasetInfo("digits", 32, 3, {"train": 1_497, "test": 300}, 10,
                "smoke stand-in: scikit-learn's 8x8 digits upsampled to 32x32 RGB (our choice)"),
)}


def dataset_info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def split_size(name: str, split: str) -> int:
    """Images in ``split`` of the full, published dataset, from the registry (no file is read): for planning."""
    info = dataset_info(name)
    if split not in info.splits:
        raise ValueError(f"unknown split {split!r} of {name}; known: {', '.join(info.splits)}")
    return info.sizes[split]


def to_float(images: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """uint8 pixels -> float32 in [0, 1] (x / 255, so 255 -> 1.0 exactly): the decoders end in a sigmoid."""
    if isinstance(images, torch.Tensor):
        if images.dtype != torch.uint8:
            raise TypeError(f"expected uint8 pixels, got {images.dtype} (already converted?)")
        return images.float().div_(255.0)
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"expected uint8 pixels, got {images.dtype} (already converted?)")
    return images.astype(np.float32) / np.float32(255.0)
