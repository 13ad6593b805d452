"""The 25-mode mixture data (REFERENCE.md, section 4.5)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from ali.data.mixture import MixtureData, assign, heldout_set, train_set

SPEC = MixtureData()  # the paper's: 100,000 training samples, std 0.05, seed 1234


def log_responsibilities(spec: MixtureData, x: np.ndarray) -> np.ndarray:
    """The reference assign() must agree with: (n, 25) log posterior p(component | x) under the true mixture."""
    d2 = ((np.asarray(x, dtype=np.float64)[:, None, :] - spec.centres()[None]) ** 2).sum(-1)
    logits = -d2 / (2 * spec.std**2)  # equal weights and shared isotropic covariance cancel
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)




@pytest.fixture(scope="module")
def train():
    return train_set(SPEC)


def test_centres_are_the_5x5_grid():
    """Centres must be exactly {-4,-2,0,2,4}^2, 25 of them, no duplicates."""
    c = SPEC.centres()
    assert c.shape == (25, 2)
    assert SPEC.n_components == 25
    expected = set(itertools.product((-4.0, -2.0, 0.0, 2.0, 4.0), repeat=2))
    assert {tuple(row) for row in c.tolist()} == expected


def test_centre_ordering_is_row_major():
    """Component k is (grid[k // 5], grid[k % 5]); labels elsewhere rely on this order."""
    c = SPEC.centres()
    grid = SPEC.grid
    for k in range(25):
        assert tuple(c[k]) == (grid[k // 5], grid[k % 5])


def test_training_set_shape_and_dtypes(train):
    """n_train rows of 2-d float32 points with int64 labels in [0, 25)."""
    x, y = train
    assert x.shape == (100_000, 2) and x.dtype == np.float32
    assert y.shape == (100_000,) and y.dtype == np.int64
    assert y.min() >= 0 and y.max() <= 24


def test_per_component_std_is_0p05(train):
    """Each component's empirical std (per axis) must be ~0.05, not e.g. 0.0025 (the variance).

    ~4,000 samples per component: the relative standard error of a std estimate is
    1/sqrt(2 n) ~ 1.1 %, so a 6 % tolerance is > 5 standard errors.
    """
    x, y = train
    c = SPEC.centres()
    for k in range(25):
        dev = x[y == k].astype(np.float64) - c[k]
        np.testing.assert_allclose(dev.mean(0), 0.0, atol=0.005)  # SE of mean ~ 0.0008
        np.testing.assert_allclose(dev.std(0), 0.05, rtol=0.06)


def test_every_sample_lies_near_its_labelled_centre(train):
    """No sample is further than 6 std from its own centre, and that centre is its nearest one.

    P(||eps|| > 6 sigma) = exp(-18) ~ 1.5e-8 per sample, ~1.5e-3 over 100,000 samples.
    """
    x, y = train
    dist = np.linalg.norm(x - SPEC.centres()[y], axis=1)
    assert dist.max() < 6 * SPEC.std
    nearest, _ = assign(SPEC, x)
    np.testing.assert_array_equal(nearest, y)


def test_components_are_equally_frequent(train):
    """Counts per component ~ Binomial(1e5, 1/25): mean 4000, sd ~196; allow +-5 sd."""
    _, y = train
    counts = np.bincount(y, minlength=25)
    assert len(counts) == 25
    assert np.all(np.abs(counts - 4000) < 5 * 196), counts


def test_training_set_is_reproducible_and_seed_dependent():
    """Same seed -> identical set; another seed -> a different set."""
    small = dataclasses.replace(SPEC, n_train=2000, n_heldout=500)
    x1, y1 = train_set(small)
    x2, y2 = train_set(small)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    x3, _ = train_set(dataclasses.replace(small, seed=small.seed + 1))
    assert not np.allclose(x1, x3)


def test_heldout_set_is_independent_of_training_set():
    """Held-out data must not be the training set, a prefix of it, or share any row with it."""
    spec = dataclasses.replace(SPEC, n_train=20_000, n_heldout=2000)
    x_tr, _ = train_set(spec)
    x_ho, y_ho = heldout_set(spec)
    assert x_ho.shape == (2000, 2) and y_ho.shape == (2000,)
    assert not np.array_equal(x_ho, x_tr[: len(x_ho)])
    train_rows = {r.tobytes() for r in x_tr}
    assert not any(r.tobytes() in train_rows for r in x_ho)


def test_heldout_set_does_not_depend_on_n_train():
    """Changing n_train must leave the held-out set unchanged (separate streams)."""
    a = heldout_set(dataclasses.replace(SPEC, n_train=1000, n_heldout=500))
    b = heldout_set(dataclasses.replace(SPEC, n_train=50_000, n_heldout=500))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_heldout_set_depends_on_seed():
    """The held-out stream is derived from the data seed."""
    a, _ = heldout_set(dataclasses.replace(SPEC, n_heldout=500))
    b, _ = heldout_set(dataclasses.replace(SPEC, n_heldout=500, seed=SPEC.seed + 1))
    assert not np.allclose(a, b)


def _probe_points() -> np.ndarray:
    rng = np.random.default_rng(0)
    near = SPEC.centres()[rng.integers(0, 25, 200)] + 0.3 * rng.standard_normal((200, 2))
    wide = rng.uniform(-6, 6, size=(200, 2))
    far = np.array([[10.0, 10.0], [-37.0, 3.1], [100.0, -250.0], [1000.0, 1000.5], [0.3, -500.0]])
    return np.concatenate([near, wide, far])


def test_log_responsibilities_normalise_and_match_assign():
    """exp(log resp) rows sum to 1 and argmax is assign()'s nearest centre, even far away."""
    x = _probe_points()
    lr = log_responsibilities(SPEC, x)
    assert lr.shape == (len(x), 25)
    assert np.all(np.isfinite(lr))
    np.testing.assert_allclose(np.exp(lr).sum(1), 1.0, rtol=1e-10)
    nearest, dist = assign(SPEC, x)
    np.testing.assert_array_equal(lr.argmax(1), nearest)
    np.testing.assert_allclose(dist, np.linalg.norm(x - SPEC.centres()[nearest], axis=1))


def test_log_responsibilities_survive_underflow():
    """Far points where naive exp(-d^2 / 2 s^2) is 0 for every component still get a proper posterior."""
    x = np.array([[1000.0, 1000.5], [100.0, -250.0]])
    d2 = ((x[:, None, :] - SPEC.centres()[None]) ** 2).sum(-1)
    assert np.all(np.exp(-d2 / (2 * SPEC.std**2)) == 0.0)  # the naive form would divide 0 by 0
    lr = log_responsibilities(SPEC, x)
    np.testing.assert_allclose(np.exp(lr).sum(1), 1.0)
    assert lr.max(1) == pytest.approx([0.0, 0.0])  # one component takes all the mass
    np.testing.assert_array_equal(lr.argmax(1), assign(SPEC, x)[0])
    assert list(lr.argmax(1)) == [24, 20]  # (4, 4) and (4, -4)


def test_assign_accepts_torch_tensors():
    """assign() gives the same answer for a tensor and for the equivalent array."""
    x = _probe_points().astype(np.float32)
    a = assign(SPEC, x)
    b = assign(SPEC, torch.from_numpy(x))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1])
