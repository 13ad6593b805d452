"""Which rows each evaluation protocol uses, and the class-balanced labelled subsets drawn from them.

From the released code (REFERENCE.md, "Table 1: SVHN" and "Unsupervised CIFAR10"):
- SVHN, L2-SVM protocol: the SVM pool is the first 63,257 rows of 'train', validation the last 10,000
  rows of 'train', test all of 'test'; the unsupervised ALI trains on 'extra'.
- CIFAR10: ALI trains on train[0:45000]; train[45000:50000] is validation; test is 'test'.
- digits, the smoke stand-in (our choice, shaped like CIFAR10's): pool = first 1,197 rows of its
  'train', validation = the last 300, test = its 'test'; the unsupervised model trains on the pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Protocol:
    pool: int  # rows [0, pool) of 'train': the SVM pool, or the unsupervised training rows
    valid: int  # rows [pool, pool + valid) of 'train': validation
    unsupervised_split: str | None  # the split the unsupervised model trains on, all of it; None: the pool rows
    test: str = "test"  # the split errors are reported on, used whole

    @property
    def n_train(self) -> int:
        """The size of 'train' the ranges were cut for; they cover it exactly."""
        return self.pool + self.valid


PROTOCOLS: dict[str, Protocol] = {
    "svhn": Protocol(pool=63_257, valid=10_000, unsupervised_split="extra"),
    "cifar10": Protocol(pool=45_000, valid=5_000, unsupervised_split=None),
    "digits": Protocol(pool=1_197, valid=300, unsupervised_split=None),
}


def _protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"no evaluation protocol for dataset {name!r}; defined for: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def protocol_split(name: str, n_train: int) -> dict[str, slice]:
    """Named row ranges of ``name``'s 'train' split, {'pool', 'valid'}, after checking its size."""
    p = _protocol(name)
    if n_train != p.n_train:
        size = "too small" if n_train < p.n_train else "larger than the published one"
        raise ValueError(f"{name} 'train' has {n_train:,} rows, {size}: its protocol takes the first {p.pool:,} "
                         f"as the pool and the next {p.valid:,} as validation ({p.n_train:,} rows in all)")
    return {"pool": slice(0, p.pool), "valid": slice(p.pool, p.n_train)}


def unsupervised_rows(name: str) -> tuple[str, slice]:
    """(split, rows) the unsupervised model trains on: SVHN all of 'extra'; CIFAR10 and digits 'train'[pool]."""
    p = _protocol(name)
    if p.unsupervised_split is None:
        return "train", slice(0, p.pool)
    return p.unsupervised_split, slice(None)


def balanced_subset(labels: np.ndarray, n_per_class: int, seed: int,
                    classes: Sequence[int] | None = None) -> np.ndarray:
    """Indices into ``labels`` of ``n_per_class`` examples of each class, picked as openai/improved-gan does.

    improved-gan (train_cifar_feature_matching.py): ``inds = RandomState(seed_data).permutation(n)``, then
    for each class in increasing order the first ``count`` permuted rows with that label. The indices
    come back in that order (class by class, permutation order within a class), so a seed gives every
    model the same labelled set, element for element. ``classes`` defaults to the labels present; give
    it to also catch a class absent from the pool.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-d, got shape {labels.shape}")
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    if (labels < 0).any():
        raise ValueError("the pool holds unlabelled rows (label -1): a labelled subset needs labelled rows")
    classes = np.unique(labels) if classes is None else np.asarray(classes)
    # The legacy RandomState on purpose: its stream is frozen across numpy versions, and it is improved-gan's.
    perm = np.random.RandomState(seed).permutation(len(labels))
    permuted = labels[perm]
    picks = [perm[permuted == c][:n_per_class] for c in classes]
    short = {int(c): len(p) for c, p in zip(classes, picks) if len(p) < n_per_class}
    if short:
        raise ValueError(f"n_per_class={n_per_class} but these classes have fewer examples in the pool "
                         f"(class: count): {short}")
    return np.concatenate(picks).astype(np.int64)
