"""The paper's image datasets as uint8 arrays, checked file by file before anything is read.

``load(name, split, root)`` returns ``images`` uint8 (N, 3, H, W) and ``labels`` int64 (N,), -1 where a
split has no labels; ``to_float`` maps pixels to [0, 1], the range of the decoders' sigmoid. Where
each dataset lives under one data root (``ali download <name> --root <root>`` puts it there):

  svhn           <root>/svhn/{train,test,extra}_32x32.mat             torchvision.datasets.SVHN
  cifar10        <root>/cifar-10-batches-py/                           torchvision.datasets.CIFAR10
  celeba         <root>/celeba/{img_align_celeba/, five .txt lists}    torchvision.datasets.CelebA
  tiny_imagenet  <root>/tiny-imagenet-200/                             TinyImageNet (below)
  digits         scikit-learn's bundled 8x8 digits, no files           the smoke stand-in

The files are checked against torchvision's class-level MD5 lists before torchvision opens them, so a
missing or corrupt file raises DatasetMissingError naming the file, its MD5, its source and the
command, rather than torchvision's generic "Dataset not found or corrupted".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.datasets import CIFAR10, SVHN, CelebA, VisionDataset
from torchvision.datasets.utils import calculate_md5, check_integrity, download_and_extract_archive, verify_str_arg

from ali.data.catalog import DATASETS, DatasetInfo, DatasetMissingError, dataset_info, split_size, to_float  # noqa: F401

Root = str | os.PathLike


# ----------------------------------------------------------------------------------------------------
# File checks and the error message


@dataclass(frozen=True)
class Expected:
    """One file (or extracted folder) a dataset needs, its MD5 if known, and how to obtain it."""

    path: Path
    md5: str | None
    source: str
    is_dir: bool = False


def _problem(item: Expected) -> str | None:
    """Why ``item`` is unusable ('missing', 'corrupt: ...'), or None when it passes."""
    if item.is_dir:
        return None if item.path.is_dir() else "missing"
    if not item.path.is_file():
        return "missing"
    if not check_integrity(item.path, item.md5):
        return f"corrupt: its MD5 is {calculate_md5(item.path)}"
    return None


def _verify(name: str, root: Root, items: Sequence[Expected], max_lines: int = 12) -> None:
    """Raise DatasetMissingError listing every unusable item of ``items``; return quietly if all pass."""
    bad = [(item, why) for item in items if (why := _problem(item))]
    if not bad:
        return
    lines = [f"dataset {name!r}: {len(bad)} required file(s) missing or corrupt under {Path(root)}"]
    groups: dict[tuple[Path, str], list[str]] = {}  # (folder, source) -> lines, in order of first appearance
    for item, why in bad[:max_lines]:
        what = f"folder {item.path.name}/" if item.is_dir else item.path.name
        md5 = f" (MD5 {item.md5})" if item.md5 else ""
        groups.setdefault((item.path.parent, item.source), []).append(f"    {what}{md5}  [{why}]")
    for (folder, source), entries in groups.items():
        lines += [f"  put in {folder}/:", *entries, f"    from: {source}"]
    if len(bad) > max_lines:
        lines.append(f"  ... and {len(bad) - max_lines} more")
    lines.append(f"Or fetch and verify it all with:  ali download {name} --root {Path(root)}")
    raise DatasetMissingError("\n".join(lines))


# ----------------------------------------------------------------------------------------------------
# SVHN


def _svhn_folder(root: Root) -> Path:
    return Path(root) / "svhn"


def _svhn_expected(root: Root, split: str) -> list[Expected]:
    url, filename, md5 = SVHN.split_list[split]
    return [Expected(_svhn_folder(root) / filename, md5, url)]


def _load_svhn(root: Root, split: str) -> tuple[np.ndarray, np.ndarray]:
    """SVHN's 32x32 cropped digits; labels are the digit itself, 0-9."""
    ds = SVHN(_svhn_folder(root), split=split, download=False)
    # The .mat files store digit 0 as label 10. torchvision maps 10 -> 0 (svhn.py: np.place(labels,
    # labels == 10, 0)); redo it here, idempotently, so the convention cannot change under us.
    labels = np.where(ds.labels == 10, 0, ds.labels).astype(np.int64)
    # torchvision already transposed the file's (H, W, C, N) to (N, C, H, W).
    return np.ascontiguousarray(ds.data, dtype=np.uint8), labels


def _download_svhn(root: Root) -> None:
    for split in SVHN.split_list:
        SVHN(_svhn_folder(root), split=split, download=True)


# ----------------------------------------------------------------------------------------------------
# CIFAR10


def _cifar10_expected(root: Root, split: str) -> list[Expected]:
    # torchvision checks every batch and the metadata whichever split is asked for, so we do too.
    source = f"{CIFAR10.url} (MD5 {CIFAR10.tgz_md5}), extracted into {Path(root)}"
    files = CIFAR10.train_list + CIFAR10.test_list + [[CIFAR10.meta["filename"], CIFAR10.meta["md5"]]]
    return [Expected(Path(root) / CIFAR10.base_folder / f, md5, source) for f, md5 in files]


def _load_cifar10(root: Root, split: str) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR10 in file order: 'train' is data_batch_1..5 (50,000), 'test' is test_batch (10,000)."""
    ds = CIFAR10(root, train=split == "train", download=False)
    images = np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2))  # torchvision's .data is NHWC
    return images, np.asarray(ds.targets, dtype=np.int64)


def _download_cifar10(root: Root) -> None:
    CIFAR10(root, train=True, download=True)


# ----------------------------------------------------------------------------------------------------
# Shared decoding of image files


def _decode_all(paths: Sequence[Path], decode: Callable[[Path], np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """Decode ``paths`` into one (N, *shape) uint8 array, in parallel threads (PIL releases the GIL)."""
    out = np.empty((len(paths), *shape), dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        for i, array in enumerate(pool.map(decode, paths)):
            if array.shape != shape:
                raise ValueError(f"{paths[i]}: decoded to shape {array.shape}, expected {shape}")
            out[i] = array
    return out


# ----------------------------------------------------------------------------------------------------
# CelebA

# The released code trained on Fuel's CelebA('64'), made by fuel/converters/celeba.py
# (convert_celeba_64): the 178x218 aligned face resized to 64x78 with PIL's ANTIALIAS (= LANCZOS),
# then rows 7..70 kept. PIL sizes are (width, height), boxes (left, top, right, bottom). Our choice:
# today's Pillow LANCZOS, which may differ from 2016's by rounding; the extracted JPEGs, not the zip.
CELEBA_RESIZE = (64, 78)
CELEBA_CROP = (0, 7, 64, 71)
_GDRIVE = "https://drive.google.com/uc?id={}"


def celeba_64(path: Path) -> np.ndarray:
    """One aligned CelebA face as (3, 64, 64) uint8, preprocessed as the released code's data was."""
    with Image.open(path) as im:
        im = im.convert("RGB").resize(CELEBA_RESIZE, Image.Resampling.LANCZOS).crop(CELEBA_CROP)
    return np.asarray(im).transpose(2, 0, 1)


def _celeba_expected(root: Root, split: str) -> list[Expected]:
    folder = Path(root) / CelebA.base_folder
    items = []
    for file_id, md5, filename in CelebA.file_list:
        source = f"Google Drive {_GDRIVE.format(file_id)} (also on the CelebA site)"
        if filename.endswith(".zip"):  # torchvision needs only the extracted images, as do we
            items.append(Expected(folder / "img_align_celeba", None,
                                  f"extract {filename} (MD5 {md5}) from {source} into {folder}"
                                  " (`ali download celeba` fetches it with gdown: `pip install gdown`)", is_dir=True))
        else:
            items.append(Expected(folder / filename, md5, source))
    return items


def _load_celeba(root: Root, split: str) -> tuple[np.ndarray, np.ndarray]:
    """CelebA's official partition (list_eval_partition.txt), faces at 64x64; no class labels (-1)."""
    ds = CelebA(root, split=split, target_type=[], download=False)
    folder = Path(ds.root) / ds.base_folder / "img_align_celeba"
    images = _decode_all([folder / f for f in ds.filename], celeba_64, (3, 64, 64))
    return images, np.full(len(images), -1, dtype=np.int64)


def _download_celeba(root: Root) -> None:
    CelebA(root, split="all", target_type=[], download=True)  # needs `pip install gdown` (torchvision's)


# ----------------------------------------------------------------------------------------------------
# Tiny ImageNet


class TinyImageNet(VisionDataset):
    """Tiny ImageNet 200 (Stanford cs231n): 64x64 RGB, 200 classes, 500 train and 50 valid images each.

    Our stand-in for the paper's "center-cropped, 64x64 version of ImageNet" (the released code read
    a 64x64 ILSVRC2012 of 1.28M images that is not openly downloadable). In torchvision's style:
    URL, file name and MD5 as class data, an idempotent ``download()``, an integrity check before use.
    A label is the WordNet id's position in sorted wnids.txt (ImageFolder's convention, our choice);
    'valid' is the archive's val/ folder, 'test' its unlabelled test/ folder (labels -1).
    """

    url = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
    filename = "tiny-imagenet-200.zip"
    md5 = "90528d7ca1a48142e341f4ef8d21d0de"
    base_folder = "tiny-imagenet-200"
    split_folders = {"train": "train", "valid": "val", "test": "test"}

    def __init__(self, root: Root, split: str = "train", transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.split = verify_str_arg(split, "split", tuple(self.split_folders))
        if download:
            self.download()
        if not self._check_integrity():
            raise RuntimeError(f"Dataset not found or incomplete under {self.folder(root)}: use download=True "
                               f"or `ali download tiny_imagenet --root {self.root}`")
        self.base = self.folder(root)
        self.classes = self.wnids(root)
        self.samples = self._samples()

    @classmethod
    def folder(cls, root: Root) -> Path:
        return Path(root) / cls.base_folder

    @classmethod
    def wnids(cls, root: Root) -> list[str]:
        """The 200 WordNet ids, sorted: class k is wnids(root)[k]."""
        return sorted((cls.folder(root) / "wnids.txt").read_text().split())

    @classmethod
    def required(cls, root: Root) -> list[tuple[Path, bool]]:
        """(path, is_dir) of every part of the extracted archive that loading reads."""
        base = cls.folder(root)
        parts = [(base / "wnids.txt", False), (base / "val" / "val_annotations.txt", False),
                 (base / "val" / "images", True), (base / "test" / "images", True)]
        if check_integrity(base / "wnids.txt"):
            parts += [(base / "train" / w / "images", True) for w in cls.wnids(root)]
        return parts

    def _check_integrity(self) -> bool:
        return all(p.is_dir() if is_dir else check_integrity(p) for p, is_dir in self.required(self.root))

    def download(self) -> None:
        """Download (skipped when the zip is present with the right MD5) and extract, unless already extracted."""
        if self._check_integrity():
            return
        download_and_extract_archive(self.url, str(self.root), filename=self.filename, md5=self.md5)

    def _samples(self) -> list[tuple[Path, int]]:
        index = {w: k for k, w in enumerate(self.classes)}
        if self.split == "train":
            return [(p, index[w]) for w in self.classes
                    for p in sorted((self.base / "train" / w / "images").glob("*.JPEG"))]
        if self.split == "valid":  # val_annotations.txt rows: file \t wnid \t bounding box
            rows = [line.split("\t") for line in (self.base / "val" / "val_annotations.txt").read_text().splitlines()
                    if line.strip()]
            return [(self.base / "val" / "images" / r[0], index[r[1]]) for r in rows]
        return [(p, -1) for p in sorted((self.base / "test" / "images").glob("*.JPEG"))]

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, target = self.samples[index]
        with Image.open(path) as im:
            img = im.convert("RGB")  # some Tiny ImageNet JPEGs are greyscale
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self) -> int:
        return len(self.samples)

    def extra_repr(self) -> str:
        return f"Split: {self.split}"


def _rgb_chw(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).transpose(2, 0, 1)


def _tiny_imagenet_expected(root: Root, split: str) -> list[Expected]:
    source = f"{TinyImageNet.url} (MD5 {TinyImageNet.md5}), extracted into {Path(root)}"
    items = [Expected(p, None, source, is_dir=is_dir) for p, is_dir in TinyImageNet.required(root)]
    archive = Path(root) / TinyImageNet.filename
    if archive.exists():  # once extracted the zip may be deleted; if it is kept it must be intact
        items.append(Expected(archive, TinyImageNet.md5, TinyImageNet.url))
    return items


def _load_tiny_imagenet(root: Root, split: str) -> tuple[np.ndarray, np.ndarray]:
    ds = TinyImageNet(root, split=split)
    images = _decode_all([p for p, _ in ds.samples], _rgb_chw, (3, 64, 64))
    return images, np.array([y for _, y in ds.samples], dtype=np.int64)


def _download_tiny_imagenet(root: Root) -> None:
    TinyImageNet(root, download=True)


# ----------------------------------------------------------------------------------------------------
# digits: the smoke stand-in

DIGITS_N_TRAIN = 1_497  # 'train' = the first 1,497 of scikit-learn's 1,797 digits, 'test' = the last 300


def _load_digits(root: Root | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (values 0..16) as 3x32x32 uint8, the SVHN/CIFAR10 input shape.

    Our choices: scale to [0, 255], upsample bilinearly (align_corners=False), round once at the end,
    copy the grey channel to R, G and B.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images).float().unsqueeze(1) * (255.0 / 16.0)  # (1797, 1, 8, 8)
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    images = x.round().clamp(0, 255).to(torch.uint8).repeat(1, 3, 1, 1).numpy()
    rows = slice(0, DIGITS_N_TRAIN) if split == "train" else slice(DIGITS_N_TRAIN, None)
    return np.ascontiguousarray(images[rows]), digits.target[rows].astype(np.int64)


# ----------------------------------------------------------------------------------------------------
# The entry points

_EXPECTED: dict[str, Callable[[Root, str], list[Expected]]] = {
    "svhn": _svhn_expected, "cifar10": _cifar10_expected, "celeba": _celeba_expected,
    "tiny_imagenet": _tiny_imagenet_expected, "digits": lambda root, split: [],
}
_LOADERS: dict[str, Callable[[Any, str], tuple[np.ndarray, np.ndarray]]] = {
    "svhn": _load_svhn, "cifar10": _load_cifar10, "celeba": _load_celeba,
    "tiny_imagenet": _load_tiny_imagenet, "digits": _load_digits,
}
_DOWNLOADERS: dict[str, Callable[[Root], None]] = {
    "svhn": _download_svhn, "cifar10": _download_cifar10, "celeba": _download_celeba,
    "tiny_imagenet": _download_tiny_imagenet,
}


def _root(name: str, root: Root | None) -> Path | None:
    if root is None and name in _DOWNLOADERS:
        raise ValueError(f"dataset {name!r} is read from files: give the data root (--root)")
    return None if root is None else Path(root)


def check(name: str, split: str, root: Root | None = None) -> None:
    """Raise DatasetMissingError, naming each file, its MD5 and source, unless ``split`` is ready to load."""
    info = dataset_info(name)
    verify_str_arg(split, "split", info.splits)
    path = _root(name, root)
    if path is not None:
        _verify(name, path, _EXPECTED[name](path, split))


def load(name: str, split: str, root: Root | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One split as (images uint8 (N, C, H, W), labels int64 (N,), -1 where unlabelled), files checked first."""
    info = dataset_info(name)
    check(name, split, root)
    images, labels = _LOADERS[name](_root(name, root), split)
    assert images.dtype == np.uint8 and images.shape[1:] == (info.channels, info.image_size, info.image_size)
    assert labels.dtype == np.int64 and labels.shape == (len(images),)
    return images, labels


def download(name: str, root: Root | None = None) -> None:
    """Fetch ``name`` into ``root`` with torchvision's machinery, skipping what passes its MD5; then verify.

    Idempotent: torchvision checks each file (or the extracted folder) before downloading it. A no-op
    for digits, which scikit-learn ships.
    """
    info = dataset_info(name)
    if name not in _DOWNLOADERS:
        return
    path = _root(name, root)
    _DOWNLOADERS[name](path)
    for split in info.splits:
        check(name, split, path)
