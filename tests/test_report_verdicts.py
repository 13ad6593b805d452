"""Computed verdicts: each branch with hand-made numbers, and each published-error convention."""

from __future__ import annotations

import math

import pytest

from ali.report.verdicts import (CONSISTENT, DIFFERS, NOT_RUN, SMOKE, Z_THRESHOLD, Ours, Published, verdict,
                                 z_score)


def test_published_standard_error_under_each_convention():
    assert Published(10.0, 0.4, "sem", n=10).standard_error() == 0.4
    assert Published(10.0, 5.0, "std", n=25).standard_error() == pytest.approx(1.0)
    assert Published(10.0, 5.0, "std").standard_error() == 5.0            # n unknown: sigma as the SE
    assert Published(10.0, 6.0, "3std", n=4).standard_error() == pytest.approx(1.0)
    assert Published(10.0, 6.0, "3std").standard_error() == pytest.approx(2.0)
    assert Published(10.0, 0.7, "unstated", n=100).standard_error() == 0.7  # never divided
    assert Published(22.18, None, "unstated").standard_error() == 0.0


def test_unknown_convention_is_rejected():
    with pytest.raises(ValueError, match="convention"):
        Published(1.0, 1.0, "2std")


def test_z_score_uses_the_combined_standard_error():
    ours = Ours(mean=13.0, std=4.0, n=16, preset="paper")          # SE 1
    paper = Published(10.0, 6.0, "3std", n=None)                     # SE 2
    assert z_score(ours, paper) == pytest.approx(3.0 / math.sqrt(5.0))


def test_consistent_inside_the_threshold_and_differs_outside():
    paper = Published(10.0, 0.0, "sem")
    just_inside = Ours(mean=10.0 + Z_THRESHOLD * 0.999, std=3.0, n=9, preset="paper")   # SE 1
    just_outside = Ours(mean=10.0 - Z_THRESHOLD * 1.001, std=3.0, n=9, preset="paper")
    assert verdict(just_inside, paper) == CONSISTENT
    assert verdict(just_outside, paper) == DIFFERS


def test_the_paper_mixture_numbers_against_a_hand_computed_z():
    # 13.4 +/- 5.8 (std over 10 runs): SE 1.834; ours 20 +/- 3 over 10 runs: SE 0.949; z = 3.19
    paper = Published(13.4, 5.8, "std", n=10)
    ours = Ours(mean=20.0, std=3.0, n=10, preset="paper")
    assert z_score(ours, paper) == pytest.approx(6.6 / math.hypot(5.8 / math.sqrt(10), 3 / math.sqrt(10)))
    assert verdict(ours, paper) == DIFFERS
    assert verdict(Ours(mean=16.0, std=3.0, n=10, preset="paper"), paper) == CONSISTENT  # z = 1.26


def test_no_published_error_and_no_spread_of_ours():
    paper = Published(22.18, None, "unstated")
    assert verdict(Ours(22.18, 0.0, 5, "paper"), paper) == CONSISTENT
    assert verdict(Ours(22.19, 0.0, 5, "paper"), paper) == DIFFERS
    assert z_score(Ours(22.0, 0.0, 5, "paper"), paper) == -math.inf


@pytest.mark.parametrize("ours", [None, Ours(math.nan, math.nan, 0, "paper"), Ours(19.0, math.nan, 1, "paper")])
def test_not_run_at_this_scale(ours):
    assert verdict(ours, Published(19.14, 0.5, "std", n=100)) == NOT_RUN


@pytest.mark.parametrize("preset", ["smoke", "tiny"])
def test_any_other_preset_is_not_comparable_even_when_the_numbers_agree(preset):
    paper = Published(19.14, 0.5, "std", n=100)
    assert verdict(Ours(19.14, 0.5, 100, preset), paper) == SMOKE
    assert verdict(Ours(19.14, math.nan, 1, preset), paper) == SMOKE   # a single smoke run is still smoke


def test_describe_says_how_the_error_was_read():
    assert "σ/√10" in Published(13.4, 5.8, "std", n=10).describe()
    assert "n not stated" in Published(19.98, 0.89, "3std").describe()
    assert "not defined" in Published(8.11, 1.3, "unstated").describe()
    assert "no error printed" in Published(22.18, None, "unstated").describe()
