"""Publishing one paper-scale mixture protocol (results/published/mixture/<protocol>/) and the report
page's section on it: a protocol is published whole, from the paper preset, or refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import dry_run, jobs, make_workdir
from test_report_page import provenance_columns

from ali.cli import main as ali_main
from ali.config import PRESET_DIR, load_config
from ali.experiments.mixture import plan
from ali.report.page import build_page
from ali.report.tables import RUN_METRICS, mixture_summary


@pytest.fixture(scope="module")
def random_keys() -> list[str]:
    return [k for k in plan(load_config(PRESET_DIR / "paper.yaml")) if k.startswith("random/")]


def fake_runs(keys: list[str], preset: str) -> pd.DataFrame:
    """One row per run key, ALI near the paper's 13.4 modes; GAN run 0 diverged (kept, as recorded)."""
    rng = np.random.default_rng(0)
    rows = []
    for i, key in enumerate(keys):
        protocol, model, run = key.split("/")
        diverged = model == "gan" and run == "run0"
        rows.append({"preset": preset, "protocol": protocol, "protocol_kind": protocol, "model": model,
                     "run": int(run[3:]), "status": "diverged" if diverged else "ok", "diverged": diverged,
                     **{m: np.nan if diverged else 13.0 + rng.normal(0, 0.5) for m in RUN_METRICS},
                     "precision": "fp32", "engine": "eager", "version_torch": "2.0", **provenance_columns(i)})
    return pd.DataFrame(rows)


def publish(tmp_path: Path, runs: pd.DataFrame, protocol: str = "random") -> tuple[Path, int]:
    runs.to_csv(tmp_path / "mixture_runs.csv", index=False)
    mixture_summary(runs).to_csv(tmp_path / "mixture.csv", index=False)
    out = tmp_path / "published" / "mixture" / protocol
    rc = ali_main(["report", "publish", "--in", f"runs={tmp_path / 'mixture_runs.csv'}", f"table={tmp_path / 'mixture.csv'}",
              "--settings", json.dumps({"protocol": protocol}), "--out", f"dir={out}"])
    return out, rc


def test_a_complete_paper_protocol_is_published_with_its_provenance(tmp_path, random_keys):
    out, rc = publish(tmp_path, fake_runs(random_keys, "paper"))
    assert rc == 0
    rows = pd.read_csv(out / "mixture_runs.csv")
    assert sorted(f"{r.protocol}/{r.model}/run{r.run}" for r in rows.itertuples()) == sorted(random_keys)
    assert (rows["status"] == "diverged").sum() == 1    # the diverged run is published, not dropped
    summary = pd.read_csv(out / "mixture.csv")
    assert set(summary["model"]) == {"ali", "gan", "inverse", "posthoc", "vae"}
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["n_runs"] == len(random_keys) and prov["status"] == {"ok": len(random_keys) - 1, "diverged": 1}
    assert prov["code_version"] == ["0.1.0+gabc"] and prov["precision"] == ["fp32"]
    assert prov["package_versions"] == {"torch": ["2.0"]} and len(prov["config_hashes"]) == len(random_keys)


def refusal(capsys, tmp_path: Path, runs: pd.DataFrame) -> str:
    """The one line `ali report publish` prints when it refuses; nothing is written."""
    assert publish(tmp_path, runs)[1] == 2
    assert not (tmp_path / "published").exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_a_smoke_table_is_refused(capsys, tmp_path, random_keys):
    assert "smoke preset, not the paper's" in refusal(capsys, tmp_path, fake_runs(random_keys, "smoke"))


def test_a_protocol_missing_a_run_is_refused(capsys, tmp_path, random_keys):
    runs = fake_runs([k for k in random_keys if k != "random/ali/run7"], "paper")
    assert "misses 1 planned run(s) (random/ali/run7)" in refusal(capsys, tmp_path, runs)


def test_a_run_still_unfinished_is_refused(capsys, tmp_path, random_keys):
    runs = fake_runs(random_keys, "paper")
    runs.loc[3, "status"] = "failed"
    assert "not ok or diverged" in refusal(capsys, tmp_path, runs)


def test_the_page_says_which_protocols_stand_at_paper_scale(tmp_path, random_keys):
    html = build_page(tmp_path / "results", "smoke")
    assert html.count("not yet run at paper scale") == 3    # random, fixed, pacgan
    assert publish(tmp_path, fake_runs(random_keys, "paper"))[1] == 0
    html = build_page(tmp_path / "results", "smoke", published=tmp_path / "published")
    assert "random: not yet run at paper scale" not in html and html.count("not yet run at paper scale") == 2
    section = html.split("id='published'")[1].split("<h2")[0]
    assert 'data-key="mixture.csv|random|ali|modes"' in section and "consistent" in section
    assert f"{len(random_keys)} runs (" in section and "1 diverged" in section


@pytest.mark.slow
def test_the_report_rule_reads_published_results_as_a_parameter_only(tmp_path):
    """With results/published/ present the page gets it, yet no job takes it as an input (nothing retrains)."""
    repo = make_workdir(tmp_path / "repo")
    (repo / "results" / "published" / "mixture" / "random").mkdir(parents=True)
    (repo / "results" / "published" / "mixture" / "random" / "mixture.csv").write_text("protocol\n")
    text = dry_run(repo, "results/smoke/report.html", "--cores", "2", "--configfile", "config/smoke.yaml")
    (report,) = jobs(text, "report")
    assert "--in results=results/smoke published=results/published --out" in report["shell"], report["shell"]
    assert "results/published" not in text.replace(report["shell"], "")
