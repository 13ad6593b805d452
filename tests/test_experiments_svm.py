"""The L2-SVM benchmark as the workflow runs it (ali.experiments.svm, ali.report.tables, the CLI and
workflow/rules/svm.smk): settings and their checks, the protocol's rows, and one real run end to end
on digits with tiny trained image models (SVHN architecture, 2 training steps at batch 4), through the
Python API and through the CLI; then dry runs of the workflow for both presets.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ali import cli
from ali.config import ConfigError, load_config
from ali.data import images as image_data
from ali.eval.features import extract
from ali.eval.svm import C_GRID_PAPER
from ali.experiments import images as im
from ali.experiments import svm
from ali.report.tables import svm_trials_frame, table1_svm_rows

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "config" / "paper.yaml"
SMOKE = REPO / "config" / "smoke.yaml"
DIMS = {"ali": 5_376, "vae": 5_376, "gan": 6_656, "raw": 3_072}
FEATURE_SETS = {"ali": "released", "vae": "released", "gan": "dcgan", "raw": "pixels"}
SOURCES = ("ali", "gan", "raw")  # what the end-to-end run trains and extracts
PARTS = {"pool": 1_197, "valid": 300, "test": 300}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """The CLI commands set torch's thread count; give it back after each test."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


# ------------------------------------------------------------------------------------- settings
@pytest.fixture(scope="module")
def paper_cfg() -> dict:
    return load_config(PAPER)


@pytest.fixture(scope="module")
def smoke_cfg() -> dict:
    return load_config(SMOKE)


def test_paper_settings_are_the_released_protocol(paper_cfg):
    s = svm.settings(paper_cfg)
    assert s["dataset"] == "svhn" and s["preset"] == "paper"
    assert s["sources"] == ["ali", "vae", "gan", "raw"]
    assert s["features"] == "released"
    assert s["n_per_class"] == 100 and s["n_trials"] == 100
    assert s["image_seed"] == 0 and s["draw_seed"] == 1000 and s["solver"] == "exact"
    grid = svm.c_grid(s)
    assert grid.shape == (50,)
    assert np.array_equal(grid, np.exp(np.linspace(-20, 20, 50)))
    assert np.array_equal(grid, C_GRID_PAPER)
    json.dumps(s)  # the workflow passes it as JSON


def test_smoke_settings(smoke_cfg):
    s = svm.settings(smoke_cfg)
    assert s["dataset"] == "digits" and s["preset"] == "smoke"
    assert s["n_per_class"] == 10 and s["n_trials"] == 10
    assert s["sources"] == ["ali", "vae", "gan", "raw"] and s["features"] == "released"
    assert np.array_equal(svm.c_grid(s), np.exp(np.linspace(-10, 10, 11)))


def with_svm(cfg: dict, **svm_values) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg["svm"].update(svm_values)
    return cfg


@pytest.mark.parametrize("values,key", [
    ({"sources": ["ali", "dcgan"]}, "svm.sources"),
    ({"image_seed": 3}, "svm.image_seed"),
    ({"features": "all_layers"}, "svm.features"),
    ({"dataset": "cifar10"}, "svm.dataset"),  # smoke trains digits only
    ({"dataset": "mnist"}, "svm.dataset"),
    ({"n_per_class": 0}, "svm.n_per_class"),
    ({"n_trials": -1}, "svm.n_trials"),
    ({"solver": "liblinear"}, "svm.solver"),
    ({"draw_seed": -5}, "svm.draw_seed"),
])
def test_bad_settings_raise_config_error_naming_the_key(smoke_cfg, values, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        svm.settings(with_svm(smoke_cfg, **values))


def test_missing_grid_key_is_named(smoke_cfg):
    cfg = copy.deepcopy(smoke_cfg)
    del cfg["svm"]["c_grid"]["n"]
    with pytest.raises(ConfigError, match=re.escape("svm.c_grid.n")):
        svm.settings(cfg)


def test_raw_pixels_need_no_trained_model(smoke_cfg):
    """A dataset images.train does not train on is fine when only raw pixels are probed."""
    s = svm.settings(with_svm(smoke_cfg, dataset="cifar10", sources=["raw"]))
    assert s["dataset"] == "cifar10" and s["sources"] == ["raw"]


def test_protocol_data_for_digits(tmp_path):
    parts = svm.protocol_data("digits", tmp_path)
    assert set(parts) == set(PARTS)
    for name, n in PARTS.items():
        x, y = parts[name]
        assert x.shape == (n, 3, 32, 32) and x.dtype == torch.uint8
        assert y.shape == (n,) and y.dtype == torch.int64
    x_train, y_train = image_data.load("digits", "train")
    # pool = train[0:1197], valid = train[1197:1497], in order: disjoint, covering 'train'
    assert torch.equal(parts["pool"][0], torch.from_numpy(x_train[:1197]))
    assert torch.equal(parts["valid"][0], torch.from_numpy(x_train[1197:]))
    assert torch.equal(parts["pool"][1], torch.from_numpy(y_train[:1197]))
    assert torch.equal(parts["valid"][1], torch.from_numpy(y_train[1197:]))
    x_test, y_test = image_data.load("digits", "test")
    assert torch.equal(parts["test"][0], torch.from_numpy(x_test))
    assert torch.equal(parts["test"][1], torch.from_numpy(y_test))
    # every class is in the pool often enough for the smoke draws (10 per class)
    assert np.bincount(parts["pool"][1].numpy(), minlength=10).min() >= 10


# ----------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def e2e(tmp_path_factory, smoke_cfg) -> dict:
    """Tiny ALI and GAN runs on digits, then features and trials for ali, gan and raw via the API."""
    root = tmp_path_factory.mktemp("svm_e2e")
    plan = im.plan(smoke_cfg)
    s = svm.settings(smoke_cfg)
    runs, records, metas, results = {}, {}, {}, {}
    for model in ("ali", "gan"):
        spec = copy.deepcopy(plan[f"digits/{model}/seed0"])
        spec.update({"batch_size": 4, "steps": 2})
        run_dir = root / "images" / "digits" / model / "seed0"
        records[model] = im.train_run(spec, run_dir, data_root=root, device="cpu", checkpoint_every=1000,
                                      log_every=1000, progress=False)
        assert records[model]["status"] == "ok"
        runs[model] = run_dir
    for source in SOURCES:
        out = root / "svm" / "digits" / source / "features.pt"
        metas[source] = svm.compute_features(source, runs.get(source), s, root, out, device="cpu")
        results[source] = svm.run_trials(out, s, out.parent / "trials.json", device="cpu", progress=False)
    return {"root": root, "settings": s, "runs": runs, "records": records, "metas": metas, "results": results}


def features_path(e2e, source) -> Path:
    return e2e["root"] / "svm" / "digits" / source / "features.pt"


def trials_path(e2e, source) -> Path:
    return e2e["root"] / "svm" / "digits" / source / "trials.json"


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
def test_features_files(e2e, source):
    blob = torch.load(features_path(e2e, source), weights_only=True)
    f, meta = blob["features"], blob["meta"]
    parts = svm.protocol_data("digits", e2e["root"])
    for part, n in PARTS.items():
        assert f[part].shape == (n, DIMS[source]) and f[part].dtype == torch.float32
        assert torch.isfinite(f[part]).all()
        assert torch.equal(f[f"{part}_labels"], parts[part][1])
    assert meta == e2e["metas"][source]
    assert meta["source"] == source and meta["dataset"] == "digits"
    assert meta["feature_set"] == FEATURE_SETS[source] and meta["feature_dim"] == DIMS[source]
    if source == "raw":
        assert meta["run_dir"] == "" and meta["run_config_hash"] == ""
        assert torch.equal(f["pool"], parts["pool"][0].float().div(255).flatten(1))
    else:
        assert meta["run_dir"] == str(e2e["runs"][source])
        assert meta["run_config_hash"] == e2e["records"][source]["config_hash"]
        # the features are those of the trained model, loaded in inference mode
        model, _ = im.load(e2e["runs"][source])
        assert not model.training and not any(m.training for m in model.modules())
        expected = extract(source, model, parts["valid"][0][:20])
        assert torch.allclose(f["valid"][:20], expected, rtol=1e-5, atol=1e-5)
    assert "code_version" in meta["provenance"]


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
def test_trials_json(e2e, source):
    s = e2e["settings"]
    r = json.loads(trials_path(e2e, source).read_text())
    assert len(r["trials"]) == s["n_trials"] == 10
    assert [t["trial"] for t in r["trials"]] == list(range(10))
    assert [t["seed"] for t in r["trials"]] == list(range(s["draw_seed"] + 1, s["draw_seed"] + 11))
    grid = svm.c_grid(s)
    assert len(r["valid_errors"]) == len(grid) == 11
    assert r["C_index"] == int(np.argmin(r["valid_errors"])) and r["C"] == pytest.approx(grid[r["C_index"]])
    assert all(t["C"] == r["C"] for t in r["trials"])
    errors = [t["error_pct"] for t in r["trials"]]
    # each error is a whole number of the 300 test digits
    assert all(0 <= e <= 100 and abs(e * 3 - round(e * 3)) < 1e-9 for e in errors)
    assert r["meta"] == e2e["metas"][source]
    assert r["settings"] == json.loads(json.dumps(s))
    assert r["settings_hash"] and r["wall_time_s"] >= 0 and "packages" in r["provenance"]
    if source == "raw":  # pixels of digits with 100 labels: far better than chance
        assert np.mean(errors) < 40


@pytest.mark.slow
def test_trials_frame_and_table1_rows(e2e):
    paths = [trials_path(e2e, s) for s in SOURCES]
    trials = svm_trials_frame(paths)
    assert len(trials) == len(SOURCES) * 10
    assert trials.groupby("model").size().to_dict() == {s: 10 for s in SOURCES}
    assert set(trials["dataset"]) == {"digits"} and set(trials["preset"]) == {"smoke"}
    assert (trials["n_labelled"] == 100).all() and (trials["solver"] == "exact").all()
    for source in SOURCES:
        rows = trials[trials["model"] == source]
        r = e2e["results"][source]
        assert rows["error_pct"].tolist() == [t["error_pct"] for t in r["trials"]]
        assert rows["draw_seed"].tolist() == [t["seed"] for t in r["trials"]]
        assert (rows["feature_dim"] == DIMS[source]).all()
        assert (rows["feature_set"] == FEATURE_SETS[source]).all()
    assert (trials["scale"].str.contains("NOT comparable")).all()

    table = table1_svm_rows(trials)
    assert table["model"].tolist() == list(SOURCES)
    assert (table["method"] == "L2-SVM").all() and (table["n_trials"] == 10).all()
    for _, row in table.iterrows():
        errors = np.array([t["error_pct"] for t in e2e["results"][row["model"]]["trials"]])
        assert row["error_pct_mean"] == pytest.approx(errors.mean())
        assert row["error_pct_std"] == pytest.approx(errors.std(ddof=1))
        assert row["error_pct_min"] == errors.min() and row["error_pct_max"] == errors.max()
        assert row["feature_dim"] == DIMS[row["model"]] and row["n_labelled"] == 100
        assert row["C"] == e2e["results"][row["model"]]["C"]
    # digits is not SVHN: no published number beside ours
    assert table["paper_error_pct"].isna().all() and table["paper_error_std"].isna().all()
    assert (table["paper_model"] == "").all()


@pytest.mark.slow
def test_table1_paper_columns_only_for_svhn(e2e, tmp_path):
    """The same trials relabelled as SVHN: the paper's numbers appear in the paper_* columns."""
    paths = []
    for source in SOURCES:
        r = json.loads(trials_path(e2e, source).read_text())
        r["meta"]["dataset"] = "svhn"
        r["settings"]["preset"] = "paper"
        p = tmp_path / f"{source}.json"
        p.write_text(json.dumps(r))
        paths.append(p)
    table = table1_svm_rows(svm_trials_frame(paths)).set_index("model")
    assert table.loc["ali", "paper_error_pct"] == 19.14 and table.loc["ali", "paper_error_std"] == 0.50
    assert table.loc["ali", "paper_model"] == "ALI (L2-SVM)"
    assert table.loc["gan", "paper_error_pct"] == 22.18 and np.isnan(table.loc["gan", "paper_error_std"])
    assert "Radford" in table.loc["gan", "paper_model"]
    assert np.isnan(table.loc["raw", "paper_error_pct"]) and table.loc["raw", "paper_model"] == ""
    assert (table["dataset"] == "svhn").all() and (table["preset"] == "paper").all()
    # ours stay ours
    errors = [t["error_pct"] for t in e2e["results"]["ali"]["trials"]]
    assert table.loc["ali", "error_pct_mean"] == pytest.approx(np.mean(errors))


# ------------------------------------------------------------------------------------------ CLI
@pytest.mark.slow
def test_cli_svm_features_from_the_configfile(e2e, tmp_path):
    out = tmp_path / "ali_features.pt"
    rc = cli.main(["svm-features", "--source", "ali", "--run-dir", str(e2e["runs"]["ali"]), "--out", str(out),
                   "--configfile", str(SMOKE), "--data-root", str(e2e["root"]), "--device", "cpu"])
    assert rc == 0 and out.is_file()
    got = torch.load(out, weights_only=True)
    ref = torch.load(features_path(e2e, "ali"), weights_only=True)
    assert got["meta"]["feature_dim"] == 5_376
    for key, value in ref["features"].items():
        assert torch.allclose(got["features"][key].float(), value.float(), rtol=1e-5, atol=1e-5), key


@pytest.mark.slow
def test_cli_svm_features_raw_with_settings_json(e2e, tmp_path):
    out = tmp_path / "raw" / "features.pt"
    rc = cli.main(["svm-features", "--source", "raw", "--out", str(out), "--settings", json.dumps(e2e["settings"]),
                   "--data-root", str(e2e["root"]), "--device", "cpu"])
    assert rc == 0
    got = torch.load(out, weights_only=True)
    ref = torch.load(features_path(e2e, "raw"), weights_only=True)
    assert all(torch.equal(got["features"][k], v) for k, v in ref["features"].items())


@pytest.mark.slow
def test_cli_svm_trials_and_table1(e2e, tmp_path):
    settings = json.dumps(e2e["settings"], sort_keys=True, separators=(",", ":"))  # as the workflow passes it
    outs = []
    for source in SOURCES:
        out = tmp_path / source / "trials.json"
        rc = cli.main(["svm-trials", "--features", str(features_path(e2e, source)), "--out", str(out),
                       "--settings", settings, "--device", "cpu"])
        assert rc == 0 and out.is_file()
        r = json.loads(out.read_text())
        ref = e2e["results"][source]
        assert r["trials"] == ref["trials"] and r["C"] == ref["C"] and r["valid_errors"] == ref["valid_errors"]
        outs.append(str(out))
    extra = tmp_path / "kplus1.csv"
    pd.DataFrame([{"preset": "smoke", "dataset": "digits", "method": "K+1", "model": "ali_kplus1",
                   "error_pct_mean": 12.5}]).to_csv(extra, index=False)
    out_trials, out_table = tmp_path / "t" / "svm_trials.csv", tmp_path / "t" / "table1.csv"
    rc = cli.main(["table1", "--svm", *outs, "--extra-rows", str(extra), "--out-trials", str(out_trials),
                   "--out-table", str(out_table)])
    assert rc == 0
    trials = pd.read_csv(out_trials)
    assert len(trials) == 30 and set(trials["model"]) == set(SOURCES)
    table = pd.read_csv(out_table)
    assert table["model"].tolist() == [*SOURCES, "ali_kplus1"]
    assert table["method"].tolist() == ["L2-SVM"] * 3 + ["K+1"]
    assert table.loc[3, "error_pct_mean"] == 12.5
    assert table.loc[0, "feature_dim"] == 5_376 and table.loc[1, "feature_dim"] == 6_656
    # without --extra-rows: the L2-SVM rows alone
    rc = cli.main(["table1", "--svm", *outs, "--out-trials", str(out_trials), "--out-table", str(out_table)])
    assert rc == 0 and pd.read_csv(out_table)["model"].tolist() == list(SOURCES)


def test_cli_bad_svm_config_exits_2_naming_the_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("preset: smoke\nimages: {train: [digits]}\nsvm: {dataset: digits, features: all_layers}\n")
    rc = cli.main(["svm-features", "--source", "raw", "--out", str(tmp_path / "f.pt"), "--configfile", str(bad),
                   "--data-root", str(tmp_path)])
    assert rc == 2
    assert "svm.features" in capsys.readouterr().err
    assert not (tmp_path / "f.pt").exists()


# ----------------------------------------------------------------------------- workflow dry runs
def make_workdir(dest: Path) -> Path:
    """A fresh copy of the workflow (top-level files, workflow/, config/), as tests/test_workflow.py makes."""
    dest.mkdir(parents=True)
    for item in REPO.iterdir():
        if item.is_file():
            shutil.copy2(item, dest / item.name)
    for name in ("workflow", "config"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return make_workdir(tmp_path_factory.mktemp("wf_svm") / "repo")


def dry_run(workdir: Path, *args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, capture_output=True, text=True,
                         timeout=300)
    text = res.stdout + res.stderr
    assert res.returncode == 0, text[-3000:]
    return text


def job_stats(text: str) -> dict[str, int]:
    table = text[text.index("Job stats:"):]
    stats = {}
    for line in table.splitlines()[3:]:
        m = re.fullmatch(r"\s*(\S+)\s+(\d+)\s*", line)
        if not m:
            break
        stats[m.group(1)] = int(m.group(2))
    return stats


def outputs(text: str) -> set[str]:
    return {p.strip() for line in re.findall(r"^\s+output: (.*)$", text, flags=re.M) for p in line.split(",")}


def settings_args(text: str, command: str) -> list[dict]:
    return [json.loads(m) for m in re.findall(rf"\$ALI {command} .*?--settings '(\{{.*?\}})'", text)]


@pytest.mark.slow
def test_paper_dry_run_plans_the_svm_jobs(workdir, paper_cfg):
    text = dry_run(workdir, "-n", "-p", "--cores", "8", "results/table1.csv")
    stats = job_stats(text)
    assert stats["svm_features"] == 4 and stats["svm_trials"] == 4 and stats["table1"] == 1
    assert stats["images_train"] == 3
    out = outputs(text)
    for source in ("ali", "vae", "gan", "raw"):
        assert f"results/svm/svhn/{source}/features.pt" in out
        assert f"results/svm/svhn/{source}/trials.json" in out
    for model in ("ali", "gan", "vae"):
        assert f"results/images/svhn/{model}/seed0/record.json" in out
    assert {"results/svm_trials.csv", "results/table1.csv"} <= out
    # the jobs carry the paper settings
    expected = json.loads(json.dumps(svm.settings(paper_cfg)))
    for command in ("svm-features", "svm-trials"):
        passed = settings_args(text, command)
        assert len(passed) == 4 and all(p == expected for p in passed)
    assert re.search(r"svm-features --source raw +--out", text)  # no --run-dir for pixels
    assert re.search(r"svm-features --source ali --run-dir results/images/svhn/ali/seed0 ", text)


@pytest.mark.slow
def test_smoke_dry_run_writes_under_results_smoke(workdir, smoke_cfg):
    text = dry_run(workdir, "--configfile", "config/smoke.yaml", "-n", "-p", "--cores", "8", "results/smoke/table1.csv")
    stats = job_stats(text)
    assert stats["svm_features"] == 4 and stats["svm_trials"] == 4 and stats["table1"] == 1
    assert stats["images_train"] == 3 and "download_data" not in stats  # digits ships with scikit-learn
    out = outputs(text)
    assert out and all(p.startswith("results/smoke/") for p in out)
    for source in ("ali", "vae", "gan", "raw"):
        assert f"results/smoke/svm/digits/{source}/trials.json" in out
    passed = settings_args(text, "svm-trials")
    assert len(passed) == 4 and all(p == json.loads(json.dumps(svm.settings(smoke_cfg))) for p in passed)
