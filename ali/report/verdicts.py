"""Whether our number agrees with a published one: a computed verdict, never a typed one.

The test (stated once, here and on the report page): a two-sided z-test on the difference between
our mean and the published value, with the combined standard error
``sqrt(se_ours**2 + se_published**2)``; ``|z| <= Z_THRESHOLD`` (2, about a 95% band) is "consistent",
anything else "differs".

How a published error becomes a standard error (``Published.standard_error``):
- ``sem``: a standard error already; used as is.
- ``std``: a standard deviation over ``n`` runs; ``std / sqrt(n)``. Where the source does not say
  ``n``, the std itself is used as the standard error (wider, so the test is more lenient) and the
  page says so.
- ``3std``: three standard deviations (Table 2's error bars); divided by 3, then as ``std``.
- ``unstated``: the source prints a ± without saying what it is; used as a standard error, and the
  page says so.
- no error printed: 0 (only our own standard error counts), and the page says so.

Ours: the sample std (ddof=1) over our ``n`` runs, divided by ``sqrt(n)``.

The L2-SVM rows (``SeedsTrials``): the published 19.14 is the mean of 100 SVM trials on ONE trained
encoder, and its ± 0.50 the spread of those trials only. A re-run trains a new encoder, so its mean
moves by the between-seed spread as well. With S training seeds of T trials each: ours is the mean of
the S seed means, SE_ours = std of the seed means (ddof=1) / √S; the between-seed variance is the
one-way random-effects estimate max(0, var(seed means) − mean over seeds of var(trials, ddof=1) / T),
and the published number's SE is √(between + SE_published²), the spread of one re-run of the
published experiment. With one seed there is no between-seed spread to measure: "cannot test".

Rows whose published number is another paper's model that ours is not (Salimans et al.'s GAN with
feature matching, Radford et al.'s DCGAN) are shown beside ours as a reference, with no test.

Before any test: a table of a preset other than ``paper`` is "smoke: not comparable" whatever it ran;
in the paper preset, no run of ours (or fewer than 2, so no standard error) is "not run at this scale".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z_THRESHOLD = 2.0
PAPER_PRESET = "paper"

CONSISTENT = "consistent"
DIFFERS = "differs"
NOT_RUN = "not run at this scale"
SMOKE = "smoke: not comparable"
ONE_SEED = "cannot test: 1 training seed"
REFERENCE = "reference only: not their model"
VERDICTS = (CONSISTENT, DIFFERS, NOT_RUN, SMOKE, ONE_SEED, REFERENCE)

TEST_STATEMENT = (
    f"Two-sided z-test on (ours − published) with the combined standard error "
    f"√(SE_ours² + SE_published²): |z| ≤ {Z_THRESHOLD:g} is “{CONSISTENT}”, otherwise “{DIFFERS}”. "
    f"SE_ours = sample std (ddof=1) / √n over our runs. A published σ over n runs becomes σ/√n; "
    f"a 3σ bar is divided by 3 first; where the source gives no n, or does not say what its ± is, "
    f"the ± (or σ) is used as the standard error itself; no printed error counts as 0. "
    f"Any preset other than “{PAPER_PRESET}”: “{SMOKE}”, whatever it ran. Fewer than 2 runs of ours: “{NOT_RUN}”. "
    f"L2-SVM rows: ours is the mean over training seeds of each seed's mean over SVM trials, SE_ours = std of the "
    f"seed means / √seeds, and the published SE becomes √(between-seed variance + SE_published²), the spread "
    f"of one re-run; one seed: “{ONE_SEED}”. Another paper's model that ours is not: “{REFERENCE}”, no test."
)

CONVENTIONS = ("sem", "std", "3std", "unstated")


@dataclass(frozen=True)
class Published:
    """A published number with its error as printed and what that error is."""

    value: float
    error: float | None  # as printed; None where the source prints no error
    convention: str  # one of CONVENTIONS
    n: int | None = None  # runs/trials the error is over, where the source says
    reading: str = ""  # how we read an error the source leaves unstated (our choice), for the page
    not_ours: str = ""  # whose model the number is, where ours is a different one: shown, never tested

    def __post_init__(self):
        if self.convention not in CONVENTIONS:
            raise ValueError(f"error convention {self.convention!r} is not one of {CONVENTIONS}")

    def standard_error(self) -> float:
        """The published error as a standard error of the published mean (see the module docstring)."""
        if self.error is None:
            return 0.0
        sigma = self.error / 3.0 if self.convention == "3std" else self.error
        if self.convention in ("std", "3std") and self.n:
            return sigma / math.sqrt(self.n)
        return sigma

    def describe(self) -> str:
        """How the error was read, in words, for the page."""
        return f"{self._describe()} ({self.reading})" if self.reading else self._describe()

    def _describe(self) -> str:
        if self.not_ours:
            return f"{self.not_ours}'s model, not ours: a reference beside ours, not tested"
        if self.error is None:
            return "no error printed: SE 0"
        n = f" over {self.n}" if self.n else ""
        if self.convention == "sem":
            return f"± is a standard error{n}"
        if self.convention == "unstated":
            return "± not defined by the source: used as the SE"
        bar = "3σ bar" if self.convention == "3std" else "σ"
        if self.n:
            return f"{bar}{n}: SE = σ/√{self.n}"
        return f"{bar}, n not stated: σ used as the SE"


@dataclass(frozen=True)
class Ours:
    """Our mean and sample std (ddof=1) over ``n`` runs of one preset."""

    mean: float
    std: float
    n: int
    preset: str

    def standard_error(self) -> float:
        return self.std / math.sqrt(self.n) if self.n > 1 else math.nan

    def published_standard_error(self, published: Published) -> float:
        """The published number's SE as a test against these runs sees it."""
        return published.standard_error()


@dataclass(frozen=True)
class SeedsTrials(Ours):
    """Our L2-SVM error over ``n`` training seeds: ``mean`` and ``std`` (ddof=1) of the seed means, and
    ``trial_var``, the mean over seeds of each seed's trial variance (ddof=1) over its number of trials."""

    trial_var: float = math.nan

    def between_seed_var(self) -> float:
        """The one-way random-effects estimate of the variance between trained encoders (never below 0)."""
        return max(0.0, self.std ** 2 - self.trial_var)

    def published_standard_error(self, published: Published) -> float:
        """One re-run of the published experiment: a new encoder (between) and its trials (published SE)."""
        return math.sqrt(self.between_seed_var() + published.standard_error() ** 2)


def seeds_trials(errors: dict[int, list[float]], preset: str) -> SeedsTrials:
    """``{training seed: [test error % of each SVM trial]}`` summarised for the test."""
    means = [sum(v) / len(v) for v in errors.values()]
    s = len(means)
    mean = sum(means) / s if s else math.nan
    std = math.sqrt(sum((m - mean) ** 2 for m in means) / (s - 1)) if s > 1 else math.nan
    trial_var = [sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v) for v, m in zip(errors.values(), means)
                 if len(v) > 1]
    return SeedsTrials(mean, std, s, preset, sum(trial_var) / len(trial_var) if trial_var else 0.0)


def z_score(ours: Ours, published: Published) -> float:
    """(ours − published) / combined SE; ±inf for a difference with no error on either side."""
    se = math.hypot(ours.standard_error(), ours.published_standard_error(published))
    diff = ours.mean - published.value
    if se == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / se


def verdict(ours: Ours | None, published: Published) -> str:
    """One of VERDICTS, computed from the numbers (see the module docstring for the order of checks)."""
    if ours is not None and ours.preset != PAPER_PRESET:  # a smoke table, whatever it ran
        return SMOKE
    if ours is None or ours.n < 1 or not math.isfinite(ours.mean):
        return NOT_RUN
    if published.not_ours:
        return REFERENCE
    if isinstance(ours, SeedsTrials) and ours.n == 1:
        return ONE_SEED
    if ours.n < 2 or not math.isfinite(ours.std):
        return NOT_RUN
    return CONSISTENT if abs(z_score(ours, published)) <= Z_THRESHOLD else DIFFERS
