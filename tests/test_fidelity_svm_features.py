"""The L2-SVM protocol's names and spread, as the released scripts had them.

- ``scripts/preprocess_representations``: its first commit (bc36004) read five encoder layers; the next
  day (19e15ae, "Fix oversight") it read three. So the five-layer set is ``released_first``; the old
  name ``released_later`` is refused with a message naming the new one.
- ``experiments/semi_supervised_svhn.py`` prints ``numpy.std(error_rates)``: ddof=0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ali.eval.features import ENCODER_SETS, encoder_features
from ali.eval.svm import RELEASED_STD_DDOF, released_std


def test_released_later_is_refused_naming_released_first():
    assert "released_first" in ENCODER_SETS and "released_later" not in ENCODER_SETS
    with pytest.raises(ValueError, match=r"'released_later' is now 'released_first'.*svm\.features: released_first"):
        encoder_features(None, torch.zeros(1, 3, 32, 32), "released_later")


def test_released_std_is_the_population_std():
    errors = [19.0, 20.0, 21.0, 22.0]  # mean 20.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5
    assert RELEASED_STD_DDOF == 0
    assert released_std(errors) == pytest.approx(math.sqrt(5 / 4))  # ddof=0 divides by n
    assert np.std(errors, ddof=1) == pytest.approx(math.sqrt(5 / 3))  # what our tables call std
    assert released_std([7.0]) == 0.0


def test_released_std_over_100_trials_is_sqrt_99_over_100_of_the_sample_std():
    errors = np.random.default_rng(0).normal(19.14, 0.5, size=100)
    assert released_std(errors) == pytest.approx(np.std(errors, ddof=1) * math.sqrt(99 / 100))
