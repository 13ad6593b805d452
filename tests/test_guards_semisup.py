"""``semisup.train_run`` trains on the class-balanced labelled subset it says it does.

On scikit-learn's digits (no download), a three-step GAN-FM and ALI K+1 run each: the labelled set the
model receives must be exactly the rows ``labelled_indices`` names (images and labels), with n/K of
each class, drawn by improved-gan's rule (the first n/K of each class after a permutation seeded by the
run's seed, written out here with numpy); and every labelled batch the training steps use must come from
that set, with its own labels.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
from conftest import SMOKE

from ali.config import load_config
from ali.data import images as image_data
from ali.experiments import semisup
from ali.models.kplus1 import KPlus1Model

STEPS, BATCH = 3, 10


@pytest.fixture(scope="module")
def smoke_specs() -> dict[str, dict]:
    return semisup.plan(load_config(SMOKE))


def improved_gan_subset(labels: np.ndarray, n_per_class: int, seed: int) -> np.ndarray:
    """improved-gan's rule, by hand: permute with RandomState(seed), then the first n of each class."""
    perm = np.random.RandomState(seed).permutation(len(labels))
    return np.concatenate([perm[labels[perm] == k][:n_per_class] for k in range(10)])


@pytest.mark.parametrize("model", ["gan_fm", "ali_kplus1"])
def test_train_run_trains_on_the_balanced_labelled_subset(model, smoke_specs, tmp_path, monkeypatch):
    spec = dict(smoke_specs[f"digits/{model}/labels50/seed0"])
    spec.update(steps=STEPS, batch_size=BATCH, seed=3)
    given: dict[str, torch.Tensor] = {}
    batches: list[tuple[torch.Tensor, torch.Tensor]] = []
    set_labelled, labelled_batch = KPlus1Model.set_labelled, KPlus1Model.labelled_batch

    def spy_set(self, images, labels):
        given["x"], given["y"] = images.clone(), labels.clone()
        set_labelled(self, images, labels)

    def spy_batch(self, step=None):
        xb, yb = labelled_batch(self, step)
        batches.append((xb.detach().clone(), yb.clone()))
        return xb, yb

    monkeypatch.setattr(KPlus1Model, "set_labelled", spy_set)
    monkeypatch.setattr(KPlus1Model, "labelled_batch", spy_batch)
    record = semisup.train_run(spec, tmp_path / "run", data_root=tmp_path, device="cpu", progress=False,
                               checkpoint_every=10_000)
    assert record["status"] == "ok" and record["steps_done"] == STEPS

    x, y = image_data.load("digits", "train")
    idx = semisup.labelled_indices(y, spec)
    assert np.array_equal(idx, improved_gan_subset(y, 5, 3))  # 50 labels, 10 classes, seed 3
    assert np.bincount(y[idx], minlength=10).tolist() == [5] * 10
    assert torch.equal(given["x"], torch.from_numpy(x[idx])) and torch.equal(given["y"], torch.from_numpy(y[idx]))

    # every labelled batch of every step is drawn from that set, with its own labels
    pool = given["x"].float().div(255.0).flatten(1)  # (50, 3072)
    assert len(batches) >= STEPS  # at least one per step (the alternating update draws it for D and for G)
    for xb, yb in batches:
        assert xb.shape == (BATCH, 3, 32, 32)
        rows = torch.cdist(xb.flatten(1), pool).argmin(1)
        torch.testing.assert_close(xb.flatten(1), pool[rows], rtol=0, atol=0)
        assert torch.equal(yb, given["y"][rows])
