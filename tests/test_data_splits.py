"""The protocols' row ranges and improved-gan's class-balanced labelled subsets."""

from __future__ import annotations

import numpy as np
import pytest

from ali.data.images import DATASETS, load
from ali.data.splits import PROTOCOLS, balanced_subset, protocol_split, unsupervised_rows


def _rows(s: slice, n: int) -> set[int]:
    return set(range(n)[s])


@pytest.mark.parametrize("name, n_train, pool, valid", [
    ("svhn", 73_257, 63_257, 10_000),
    ("cifar10", 50_000, 45_000, 5_000),
    ("digits", 1_497, 1_197, 300),
])
def test_protocol_sizes_and_disjointness(name, n_train, pool, valid):
    """Pool = the first rows, validation = the last rows, disjoint and covering 'train' exactly."""
    split = protocol_split(name, n_train)
    assert set(split) == {"pool", "valid"}
    p, v = _rows(split["pool"], n_train), _rows(split["valid"], n_train)
    assert len(p) == pool and len(v) == valid
    assert p.isdisjoint(v) and p | v == set(range(n_train))
    assert min(p) == 0 and max(v) == n_train - 1
    assert n_train == DATASETS[name].sizes["train"] == PROTOCOLS[name].n_train


def test_released_code_ranges_exactly():
    assert protocol_split("svhn", 73_257) == {"pool": slice(0, 63_257), "valid": slice(63_257, 73_257)}
    assert protocol_split("cifar10", 50_000) == {"pool": slice(0, 45_000), "valid": slice(45_000, 50_000)}


def test_protocol_rejects_wrong_sizes_and_names():
    with pytest.raises(ValueError, match="too small"):
        protocol_split("svhn", 26_032)  # e.g. 'test' passed by mistake
    with pytest.raises(ValueError, match="larger"):
        protocol_split("cifar10", 60_000)
    with pytest.raises(ValueError, match="no evaluation protocol"):
        protocol_split("celeba", 162_770)


def test_unsupervised_rows():
    """SVHN's unsupervised model trains on all of 'extra'; CIFAR10's on train[0:45000]; digits' on its pool."""
    assert unsupervised_rows("svhn") == ("extra", slice(None))
    assert unsupervised_rows("cifar10") == ("train", slice(0, 45_000))
    assert unsupervised_rows("digits") == ("train", slice(0, 1_197))


@pytest.fixture(scope="module")
def pool_labels():
    rng = np.random.default_rng(3)
    return rng.integers(0, 10, size=2_000)


def test_balanced_subset_is_balanced_and_in_the_pool(pool_labels):
    idx = balanced_subset(pool_labels, 20, seed=1)
    assert idx.dtype == np.int64 and idx.shape == (200,)
    assert len(set(idx.tolist())) == 200 and idx.min() >= 0 and idx.max() < len(pool_labels)
    np.testing.assert_array_equal(np.bincount(pool_labels[idx], minlength=10), 20)
    np.testing.assert_array_equal(pool_labels[idx], np.repeat(np.arange(10), 20))  # class by class


def test_balanced_subset_matches_improved_gan(pool_labels):
    """The first n of each class after RandomState(seed).permutation, in improved-gan's order."""
    seed, count = 7, 15
    inds = np.random.RandomState(seed).permutation(pool_labels.shape[0])
    permuted = pool_labels[inds]
    expected = np.concatenate([inds[permuted == j][:count] for j in range(10)])
    np.testing.assert_array_equal(balanced_subset(pool_labels, count, seed), expected)


def test_balanced_subset_seeds(pool_labels):
    a = balanced_subset(pool_labels, 10, seed=0)
    np.testing.assert_array_equal(a, balanced_subset(pool_labels, 10, seed=0))
    b = balanced_subset(pool_labels, 10, seed=1)
    assert set(a.tolist()) != set(b.tolist())


def test_balanced_subset_errors():
    labels = np.array([0] * 5 + [1] * 2 + [2] * 5)
    with pytest.raises(ValueError, match=r"\{1: 2\}"):
        balanced_subset(labels, 3, seed=0)
    with pytest.raises(ValueError, match=r"\{3: 0\}"):
        balanced_subset(labels[labels != 1], 3, seed=0, classes=[0, 2, 3])  # a class absent from the pool
    with pytest.raises(ValueError, match="unlabelled"):
        balanced_subset(np.array([0, 1, -1]), 1, seed=0)
    with pytest.raises(ValueError, match="at least 1"):
        balanced_subset(labels, 0, seed=0)


def test_digits_protocol_end_to_end():
    """The smoke path: digits 'train' -> pool/valid -> 100 labelled per class from the pool."""
    _, labels = load("digits", "train")
    split = protocol_split("digits", len(labels))
    pool = labels[split["pool"]]
    idx = balanced_subset(pool, 100, seed=0, classes=range(10))
    np.testing.assert_array_equal(np.bincount(pool[idx]), 100)
    assert idx.max() < len(pool)
