"""Published numbers (``ali.report.reference``): every one carries its error bar's meaning and source.

Conventions, from the sources themselves:
- ALI, Table 2 caption: "For ALI, error bars correspond to 3 times the standard deviation".
- GAN (feature matching), Table 2: quoted from Salimans et al., whose Table 2 caption says "Results are
  averaged over 10 splits of data" and not what the +/- is; Table 1's 8.11 +/- 1.3 (their section 6.3)
  says neither.
- ALI, Table 1 K+1 (7.42 +/- 0.65): no convention stated.
- ALI, Table 1 L2-SVM (19.14 +/- 0.50): the std over 100 SVMs; the released script prints numpy.std, ddof=0.
- PacGAN: standard error over 10 trials. The paper's mixture +/-: unstated.
"""

from __future__ import annotations

import pytest

from ali.report import reference as ref
from ali.report.reference import (CONVENTIONS, NO_ERROR, PUBLISHED, RANGE, SEM, SIGMA_3, STD_DDOF0_TRIALS, UNSTATED,
                                  Published, published)


def test_every_record_is_complete():
    assert PUBLISHED
    for key, rec in PUBLISHED.items():
        assert rec.convention in CONVENTIONS, key
        assert (rec.error is None) == (rec.convention in (NO_ERROR, RANGE)), key
        assert rec.source, key
        assert rec.n_runs is None or rec.n_runs > 1, key


def test_conventions_per_source():
    for n in (1000, 2000, 4000, 8000):
        ali, fm = published(f"table2.cifar10.ali_kplus1.{n}"), published(f"table2.cifar10.gan_fm.{n}")
        assert ali.convention == SIGMA_3 and ali.sigma == pytest.approx(ali.error / 3)
        assert fm.convention == UNSTATED and fm.sigma is None and fm.n_runs == 10
        assert "Salimans" in fm.source and "10 splits" in fm.source
    k1 = published("table1.svhn.kplus1.ali")
    assert k1.convention == UNSTATED and k1.sigma is None and k1.n_runs is None
    assert published("table1.svhn.kplus1.gan_fm").convention == UNSTATED
    svm = published("table1.svhn.l2svm.ali")
    assert svm.convention == STD_DDOF0_TRIALS and svm.n_runs == 100 and svm.sigma == svm.error
    assert published("table1.svhn.l2svm.dcgan").convention == NO_ERROR
    for model in ("ali", "gan"):
        assert published(f"mixture.paper.{model}.modes").convention == UNSTATED
        for metric in ("strict_modes", "hq_pct", "reverse_kl"):
            rec = published(f"mixture.pacgan.{model}.{metric}")
            assert rec.convention == SEM and rec.n_runs == 10 and rec.sigma is None


def test_views_are_built_from_the_records():
    for model in ("ali", "gan"):
        rec = published(f"mixture.paper.{model}.modes")
        view = ref.PAPER_MIXTURE[model]
        assert (view["modes_mean"], view["modes_std"], view["error_convention"]) == (rec.value, rec.error, UNSTATED)
        assert view["modes_min"] == published(f"mixture.paper.{model}.modes_min").value
        assert view["modes_max"] == published(f"mixture.paper.{model}.modes_max").value
        pac = ref.PACGAN_MIXTURE[model]
        for metric in ("strict_modes", "hq_pct", "reverse_kl"):
            rec = published(f"mixture.pacgan.{model}.{metric}")
            assert (pac[f"{metric}_mean"], pac[f"{metric}_sem"]) == (rec.value, rec.error)
        assert pac["error_convention"] == SEM
    for model, n_map in ref.PAPER_TABLE2.items():
        for n, (value, error) in n_map.items():
            rec = published(f"table2.cifar10.{model}.{n}")
            assert (value, error) == (rec.value, rec.error)
    assert ref.PAPER_TABLE2_CONVENTION == {"ali_kplus1": SIGMA_3, "gan_fm": UNSTATED}
    for view, key in ((ref.PAPER_TABLE1_SVM["ali"], "table1.svhn.l2svm.ali"),
                      (ref.PAPER_TABLE1_KPLUS1["ali_kplus1"], "table1.svhn.kplus1.ali"),
                      (ref.PAPER_TABLE1_KPLUS1["gan_fm"], "table1.svhn.kplus1.gan_fm")):
        rec = published(key)
        assert view["paper_error_pct"] == rec.value and view["paper_error_convention"] == rec.convention
        assert view["paper_error_std"] == view["paper_error"] == rec.error  # the legacy name, same number
    assert "paper_error_std" not in ref.PAPER_TABLE1_SVM["gan"]  # Radford et al.'s number has no bar


def test_legacy_names_still_import():
    assert ref.MIXTURE_REFERENCES == {"random": ("paper", ref.PAPER_MIXTURE), "pacgan": ("pacgan", ref.PACGAN_MIXTURE)}
    assert ref.PACGAN_EPOCHS == 400


def test_bad_records_are_refused():
    with pytest.raises(ValueError, match="unknown error convention"):
        Published(1.0, 0.1, "1 sigma probably", "somewhere")
    with pytest.raises(ValueError, match="does not fit"):
        Published(1.0, None, SIGMA_3, "somewhere")
    with pytest.raises(KeyError, match="no published number 'table9'"):
        published("table9")
