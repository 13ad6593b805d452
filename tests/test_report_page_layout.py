"""What a reader sees on the report page at smoke scale: the paper's protocol first, distinct captions,
image grids upscaled, wide tables that scroll instead of being cut, consistent numbers, the preset's own
Table 2 and a compact provenance table (built from the fake results of test_report_page)."""

from __future__ import annotations

import re

import pytest
from test_report_page import write_results

from ali.report.page import build_page, mean_std, png_width


@pytest.fixture(scope="module")
def smoke_html(tmp_path_factory) -> str:
    return build_page(write_results(tmp_path_factory.mktemp("smoke") / "results", "smoke"))


@pytest.mark.parametrize("mean, std, text", [
    (0.97591, 0.1123, "0.98 ± 0.11"), (19.48312, 0.2521, "19.48 ± 0.25"), (13.0, 5.8, "13.0 ± 5.8"),
    (17.0, float("nan"), "17"), (float("nan"), 1.0, "–"), (24.1, 0.0, "24.1 ± 0"), (101.3, 12.4, "101 ± 12"),
])
def test_mean_and_std_to_the_std_s_two_significant_digits(mean, std, text):
    assert mean_std(mean, std) == text


def test_figure8_shows_the_papers_protocol_first_and_says_why_b_and_c_share_a_decoder(smoke_html):
    assert smoke_html.index("figure8_random.png") < smoke_html.index("figure8_pacgan.png")
    assert "identical by construction" in smoke_html


def test_samples_and_reconstructions_have_distinct_captions(smoke_html):
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", smoke_html)
    samples = [c for c in captions if "svhn, ALI, seed 0" in c and c.startswith("Samples")]
    recons = [c for c in captions if "svhn, ALI, seed 0" in c and c.startswith("Reconstructions")]
    assert len(samples) == len(recons) == 1 and samples != recons


def test_image_grids_are_shown_at_an_integer_upscale_with_nearest_neighbour(smoke_html):
    grids = re.findall(r'<img src="data:image/png;base64,[^"]*" alt="([^"]*_seed0_[a-z]+\.png)" '
                       r'class="pixels" width="(\d+)">', smoke_html)
    assert len(grids) == 5
    assert "image-rendering:pixelated" in smoke_html
    tiny = 20  # the fake figures are 20 px wide: shown at 36x
    assert {int(w) for _, w in grids} == {tiny * 36}


def test_png_width_reads_the_header():
    from test_report_page import tiny_png

    assert png_width(tiny_png()) == 20


def test_wide_tables_scroll_and_wrap_instead_of_being_cut(smoke_html):
    assert re.search(r'<div class="scroll"><table id="verdicts">', smoke_html)
    assert ".scroll{overflow-x:auto" in smoke_html and "overflow-wrap:break-word" in smoke_html


def test_numbers_are_consistent(smoke_html):
    assert "± –" not in smoke_html and "1 seeds" not in smoke_html and "1 runs" not in smoke_html
    assert not re.search(r"min -?\d+\.\d{4,}", smoke_html)   # extremes to 3 significant digits


def test_the_smoke_presets_own_table2_is_on_the_page(smoke_html):
    table = re.search(r'<table id="our-table2">(.*?)</table>', smoke_html).group(1)
    assert "50 labels" in table and "100 labels" in table
    assert re.search(r"\d+\.\d+ ± \d+\.\d+ \(3 seeds, 0 diverged\)", table)


def test_provenance_is_a_compact_table_not_a_list_of_hashes(smoke_html):
    assert "config hashes (42 distinct)" in smoke_html
    assert not re.search(r"(\b[0-9a-f]{12}\b\s+){3}", smoke_html)   # no run of hashes


def test_the_verdict_stands_next_to_its_quantity(smoke_html):
    head = re.search(r'<table id="verdicts"><tr>(.*?)</tr>', smoke_html).group(1)
    assert re.findall(r"<th>([^<]*)</th>", head)[:4] == ["source", "quantity", "verdict", "z"]


def test_svm_provenance_counts_every_feature_run_once(smoke_html):
    section = smoke_html[smoke_html.index("<h2 id='svm'>"):smoke_html.index("<h2 id='semisup'>")]
    assert "<th>feature runs (SVM trials)</th>" in section
    assert "<td>preset</td><td>smoke</td><td class='num'>7</td>" in section  # ali, gan x 3 seeds; raw once
