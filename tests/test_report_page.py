"""The report page, built from small synthetic tables, a tiny PNG and synthetic history.csv files.

The tables go through the package's own group-bys (ali/report/tables.py), so they carry exactly the
columns the workflow writes. The test then reads the page back: every published number of
reference.py appears once in the verdict table, each verdict is verdicts.py's computation from the CSV
values, every image is a data URI, and nothing points outside the file.
"""

from __future__ import annotations

import base64
import io
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import dry_run, job_stats, jobs

from ali.report import reference as ref
from ali.report.page import build_page, main
from ali.report.tables import (RUN_METRICS, mixture_summary, table1_kplus1_rows, table1_svm_rows,
                               table2_rows)
from ali.report.verdicts import (CONSISTENT, DIFFERS, NOT_RUN, REFERENCE, SMOKE, VERDICTS, Ours, Published,
                                 seeds_trials, verdict)


def tiny_png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=20)
    plt.close(fig)
    return buf.getvalue()


def provenance_columns(i: int) -> dict:
    return {"device": "cpu", "code_version": "0.1.0+gabc", "config_hash": f"{i:012x}", "wall_time_s": 10.0 + i,
            "our_choices": "ours", "scale": "x"}


def mixture_runs(preset: str) -> pd.DataFrame:
    """Random protocol: ALI near the paper's 13.4, GAN far above its 10.4; pacgan: near PacGAN's numbers."""
    rng = np.random.default_rng(0)
    rows = []
    for kind, n in (("random", 10), ("pacgan", 4)):
        for model, centre in (("ali", {"modes": 13.0, "strict_modes": 24.0, "hq_pct": 95.5, "reverse_kl": 0.15}),
                              ("gan", {"modes": 24.0, "strict_modes": 17.0, "hq_pct": 60.0, "reverse_kl": 0.7}),
                              ("vae", {"modes": 25.0})):
            for run in range(n):
                metrics = {m: centre.get(m, 1.0) + rng.normal(0, 0.3) for m in RUN_METRICS}
                diverged = model == "gan" and run == 0
                rows.append({"preset": preset, "protocol": kind, "protocol_kind": kind, "model": model, "run": run,
                             "status": "diverged" if diverged else "ok", "diverged": diverged,
                             **{m: (np.nan if diverged else v) for m, v in metrics.items()},
                             **provenance_columns(len(rows))})
    return pd.DataFrame(rows)


def svm_trials(preset: str, dataset: str) -> pd.DataFrame:
    """Three training seeds of 20 SVM trials per source (raw pixels: one, they have no training seed)."""
    rng = np.random.default_rng(1)
    rows = []
    for model, centre in (("ali", 19.2), ("gan", 30.0), ("raw", 60.0)):
        for seed, trial in [(s, t) for s in range(1 if model == "raw" else 3) for t in range(20)]:
            rows.append({"preset": preset, "dataset": dataset, "model": model, "image_seed": seed,
                         "feature_set": "f", "feature_dim": 8, "trial": trial, "C": 1.0,
                         "error_pct": centre + 0.3 * seed + rng.normal(0, 0.5), "n_labelled": 1000,
                         "solver": "exact", "scale": "x", "settings_hash": "s1", "source_config_hash": f"c{model}",
                         "code_version": "0.1.0+gabc", "device": "cpu", "trials_wall_time_s": 5.0,
                         "our_choices": "ours"})
    return pd.DataFrame(rows)


def semisup_runs(preset: str, datasets_labels: list[tuple[str, int]]) -> pd.DataFrame:
    rng = np.random.default_rng(2)
    rows = []
    for dataset, n_labels in datasets_labels:
        for model, centre in (("ali_kplus1", 19.9), ("gan_fm", 40.0)):
            for seed in range(3):
                rows.append({"preset": preset, "dataset": dataset, "model": model, "n_labels": n_labels, "seed": seed,
                             "status": "ok", "diverged": False, "test_error_pct": centre + rng.normal(0, 0.3),
                             **provenance_columns(seed)})
    return pd.DataFrame(rows)


def history(steps: int, columns: list[str], eval_every: int = 0) -> str:
    lines = [",".join(["step", "wall_s", *columns, *(["modes", "hq_pct"] if eval_every else [])])]
    for step in range(10, steps + 1, 10):
        losses = [f"{1.0 / step:.4f}" for _ in columns]
        evals = ([str(step // 10), "50.0"] if step % eval_every == 0 else ["", ""]) if eval_every else []
        lines.append(",".join([str(step), f"{step / 100:.3f}", *losses, *evals]))
    return "\n".join(lines) + "\n"


def write_results(root: Path, preset: str) -> Path:
    """A results folder as the workflow leaves it, in miniature."""
    paper = preset == "paper"
    root.mkdir(parents=True)
    runs = mixture_runs(preset)
    runs.to_csv(root / "mixture_runs.csv", index=False)
    mixture_summary(runs).to_csv(root / "mixture.csv", index=False)
    trials = svm_trials(preset, "svhn" if paper else "digits")
    trials.to_csv(root / "svm_trials.csv", index=False)
    ssl = semisup_runs(preset, [("svhn", 1000), ("cifar10", 1000), ("cifar10", 2000)] if paper
                       else [("digits", 50), ("digits", 100)])
    ssl.to_csv(root / "semisup_runs.csv", index=False)
    t1_dataset, t1_labels = ("svhn", 1000) if paper else ("digits", 100)
    t1_runs = ssl[(ssl["dataset"] == t1_dataset) & (ssl["n_labels"] == t1_labels)]  # the runs the workflow gives
    pd.concat([table1_svm_rows(trials), table1_kplus1_rows(t1_runs)]).to_csv(root / "table1.csv", index=False)
    table2_rows(ssl[ssl["dataset"] == ("cifar10" if paper else "digits")]).to_csv(root / "table2.csv", index=False)

    png = tiny_png()
    for name in ("figure8.png", "figure8_random.png", "figure8_pacgan.png"):
        (root / name).write_bytes(png)
    (root / "figures").mkdir()
    for name in ("svhn_ali_seed0_samples", "svhn_ali_seed0_reconstructions", "svhn_ali_seed0_interpolations",
                 "tiny_imagenet_gan_seed0_samples", "digits_vae_seed0_samples"):
        (root / "figures" / f"{name}.png").write_bytes(png)
    for protocol in ("random", "pacgan"):
        for model in ("ali", "gan"):
            run_dir = root / "mixture" / protocol / model / "run0"
            run_dir.mkdir(parents=True)
            (run_dir / "history.csv").write_text(history(100, ["loss_d", "loss_g"], eval_every=50))
        vae_dir = root / "mixture" / protocol / "vae" / "run0"
        vae_dir.mkdir(parents=True)
        (vae_dir / "history.csv").write_text(history(50, ["loss"]))
    ssl_dir = root / "semisup" / "cifar10" / "ali_kplus1" / "labels1000" / "seed0"
    ssl_dir.mkdir(parents=True)
    (ssl_dir / "history.csv").write_text(history(40, ["loss_d", "loss_g"]))
    (root / "mixture" / "pacgan" / "gan" / "run1").mkdir(parents=True)  # a run with no history: no crash
    return root


class PageReader(HTMLParser):
    """The verdict table's rows (their data-* attributes) and every src/href on the page."""

    def __init__(self):
        super().__init__()
        self.rows, self.links, self.imgs, self.tags = [], [], [], Counter()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags[tag] += 1
        if tag == "tr" and "data-key" in attrs:
            self.rows.append(attrs)
        if tag == "img":
            self.imgs.append(attrs.get("src", ""))
        self.links += [attrs[k] for k in ("src", "href") if k in attrs]


def read_page(html: str) -> PageReader:
    reader = PageReader()
    reader.feed(html)
    return reader


def published_numbers() -> Counter:
    """Every published number in reference.py's tables (not the run counts, epochs or conventions)."""
    numbers = []
    for table in (ref.PAPER_MIXTURE, ref.PACGAN_MIXTURE):
        for entry in table.values():
            numbers += [v for k, v in entry.items() if k.endswith(("_mean", "_std", "_sem", "_min", "_max"))]
    for table in (ref.PAPER_TABLE1_SVM, ref.PAPER_TABLE1_KPLUS1):
        for entry in table.values():
            numbers += [entry[k] for k in ("paper_error_pct", "paper_error") if k in entry]
    numbers += [x for by_labels in ref.PAPER_TABLE2.values() for pair in by_labels.values() for x in pair]
    return Counter(format(float(x), "g") for x in numbers if x is not None)


def expected_verdict(key: str, results: Path) -> str:
    """verdicts.py on the CSV values, with each published error's convention as the sources state it."""
    table, *sel = key.split("|")
    frame = pd.read_csv(results / table)
    if table == "mixture.csv":
        kind, model, metric = sel
        source, n_pub = (ref.PAPER_MIXTURE, ref.PAPER_MIXTURE_N_RUNS) if kind == "random" else (
            ref.PACGAN_MIXTURE, ref.PACGAN_N_TRIALS)
        numbers = source[model]
        conv = "sem" if f"{metric}_sem" in numbers else "std"
        published = Published(numbers[f"{metric}_mean"], numbers[f"{metric}_{conv}"], conv, n_pub)
        row = frame[(frame["protocol_kind"] == kind) & (frame["model"] == model)].iloc[0]
        ours = Ours(row[f"{metric}_mean"], row[f"{metric}_std"], int(row["n_evaluated"]), row["preset"])
    elif table == "table1.csv" and sel == ["L2-SVM", "ali"]:  # seeds x trials, from svm_trials.csv
        trials = pd.read_csv(results / "svm_trials.csv").query("model == 'ali'")
        ours = seeds_trials({s: list(g["error_pct"]) for s, g in trials.groupby("image_seed")}, trials["preset"].iloc[0])
        published = Published(ref.PAPER_TABLE1_SVM["ali"]["paper_error_pct"], 0.50, "std", 100)
    elif table == "table1.csv":
        method, model = sel
        entry = (ref.PAPER_TABLE1_SVM if method == "L2-SVM" else ref.PAPER_TABLE1_KPLUS1)[model]
        published = Published(entry["paper_error_pct"], entry.get("paper_error_std"),
                               "std" if method == "L2-SVM" else "unstated",
                               ref.PAPER_TABLE1_SVM_N_TRIALS if method == "L2-SVM" else None)
        rows = frame[(frame["method"] == method) & (frame["model"] == model)]
        row = rows.iloc[0]
        n = int(row["n_trials"]) - (0 if pd.isna(row.get("n_diverged")) else int(row["n_diverged"]))
        ours = Ours(row["error_pct_mean"], row["error_pct_std"], n, row["preset"])
    else:
        model, n_labels = sel[0], int(sel[1])
        value, bar = ref.PAPER_TABLE2[model][n_labels]
        published = Published(value, bar, "3std" if model == "ali_kplus1" else "unstated")
        row = frame[frame["model"] == model].iloc[0]
        if f"n_seeds_{n_labels}" not in row:  # the preset ran Table 2 at other label counts
            return verdict(Ours(float("nan"), float("nan"), 0, row["preset"]), published)
        ours = Ours(row[f"error_pct_mean_{n_labels}"], row[f"error_pct_std_{n_labels}"],
                    int(row[f"n_seeds_{n_labels}"]), row["preset"])
    if key in ("table1.csv|L2-SVM|gan", "table1.csv|K+1|gan_fm") or key.startswith("table2.csv|gan_fm"):
        published = Published(published.value, published.error, published.convention, published.n, not_ours="them")
    return verdict(ours, published)


@pytest.fixture(scope="module", params=["paper", "smoke"])
def built(request, tmp_path_factory) -> tuple[str, Path, str, PageReader]:
    results = write_results(tmp_path_factory.mktemp(request.param) / "results", request.param)
    html = build_page(results)
    return request.param, results, html, read_page(html)


def test_every_published_number_appears_once_in_the_verdict_table(built):
    _, _, _, page = built
    shown = Counter(x for row in page.rows for x in row["data-published"].split())
    assert shown == published_numbers()


def test_each_verdict_is_computed_from_the_csv_values(built):
    _, results, _, page = built
    assert page.rows
    for row in page.rows:
        assert row["data-verdict"] == expected_verdict(row["data-key"], results), row["data-key"]


def verdicts_published_rows() -> list:
    from ali.report.comparisons import mixture_comparisons, table1_comparisons, table2_comparisons

    return mixture_comparisons(None) + table1_comparisons(None) + table2_comparisons(None)


def test_verdicts_cover_each_branch_the_preset_allows(built):
    preset, _, _, page = built
    verdicts = Counter(row["data-verdict"] for row in page.rows)
    assert set(verdicts) <= set(VERDICTS)
    if preset == "paper":
        assert verdicts[CONSISTENT] and verdicts[DIFFERS] and verdicts[NOT_RUN] and not verdicts[SMOKE]
        by_key = {row["data-key"]: row["data-verdict"] for row in page.rows}
        assert by_key["mixture.csv|random|ali|modes"] == CONSISTENT      # ~13 against 13.4 ± 5.8
        assert by_key["mixture.csv|random|gan|modes"] == DIFFERS         # ~24 against 10.4 ± 9.2
        assert by_key["table2.csv|ali_kplus1|4000"] == NOT_RUN           # no run with 4,000 labels
        assert by_key["table1.csv|K+1|gan_fm"] == by_key["table2.csv|gan_fm|1000"] == REFERENCE  # not their model
        assert by_key["table1.csv|L2-SVM|ali"] in (CONSISTENT, DIFFERS)  # three training seeds: a real test
    else:  # a smoke run is never compared: every published number says so, label counts it did not run too
        assert set(verdicts) == {SMOKE} and len(page.rows) == len(verdicts_published_rows())


def test_the_page_is_self_contained(built):
    _, results, html, page = built
    assert all(src.startswith("data:image/png;base64,") for src in page.imgs)
    embedded = {base64.b64decode(src.split(",", 1)[1]) for src in page.imgs}
    for png in list(results.glob("figure8*.png")) + list((results / "figures").glob("*.png")):
        assert png.read_bytes() in embedded, png.name   # every figure the workflow drew
    assert len(page.imgs) > len(embedded & {p.read_bytes() for p in results.rglob("*.png")})  # and curves
    assert all(link.startswith(("data:", "#")) for link in page.links), [lk[:40] for lk in page.links]
    assert not page.tags["script"] and not page.tags["link"] and not page.tags["iframe"]
    assert not re.search(r"url\(|@import|https?://", html.split("<body>")[0])   # the CSS fetches nothing


def test_test_statement_provenance_captions_and_missing_history(built):
    preset, _, html, _ = built
    assert html.count("Two-sided z-test") == 1
    assert "odd columns are original samples from the validation set" in html
    assert "Figure 6" in html and "Figure 8" in html
    assert "no history recorded (no history.csv under images/*/*/seed*/)" in html
    assert "config hashes" in html and "0.1.0+gabc" in html
    assert ("NOT comparable" in html) == (preset != "paper")


def test_an_empty_results_folder_gives_a_page_of_not_run(tmp_path):
    html = build_page(tmp_path)
    page = read_page(html)
    assert page.rows and all(row["data-verdict"] == NOT_RUN for row in page.rows)
    assert "no Figure 8" in html and "provenance: no runs recorded" in html


def test_main_writes_the_page(tmp_path):
    results = write_results(tmp_path / "results", "smoke")
    out = tmp_path / "out" / "report.html"
    main(["--results", str(results), "--out", str(out)])
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert "ALI, retrained: report (smoke preset)" in out.read_text()


@pytest.mark.slow
def test_the_workflow_plans_the_report_after_every_table_and_figure(workdir):
    """A dry run of results/smoke/report.html in a fresh copy of the workflow (no results/)."""
    text = dry_run(workdir, "results/smoke/report.html", "--cores", "2", "--configfile", "config/smoke.yaml")
    assert job_stats(text)["report"] == 1
    (report,) = jobs(text, "report")
    inputs = report["input"]
    for name in ("mixture.csv", "mixture_runs.csv", "figure8.png", "table1.csv", "table2.csv", "svm_trials.csv",
                 "semisup_runs.csv", "figures/digits_ali_seed0_reconstructions.png"):
        assert f"results/smoke/{name}" in inputs, name
    assert re.search(r"\$ALI report page --in results=results/smoke --out page=results/smoke/report\.html "
                     r"--settings '\{\"preset\":\"smoke\"\}'", report["shell"]), report["shell"]
