"""The L2-SVM benchmark as the workflow runs it (ali.experiments.svm under the experiment contract,
ali.experiments.rows, ali.report.tables, the CLI and workflow/rules/svm.smk): settings and their checks, the protocol's rows,
and one real run end to end on digits with tiny trained image models (SVHN architecture, 2 training
steps at batch 4): a source's features are its "training" (`ali train`), its trials its evaluation
(`ali evaluate`), through the Python API and through the CLI; then dry runs of the workflow for both
presets.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import PAPER, SMOKE, canonical, dry_run, in_args, job_stats, jobs, train_specs, write_fake_semisup_run

from ali import cli
from ali.config import ConfigError, load_config
from ali.data import images as image_data
from ali.eval.features import extract
from ali.eval.svm import C_GRID_PAPER
from ali.experiments import images as im
from ali.experiments import semisup, svm
from ali.experiments.base import RunContext, experiment, write_json
from ali.train.record import METRICS, RECORD, read_record
from ali.experiments.rows import runs_frame
from ali.report.tables import table1_svm_rows

DIMS = {"ali": 5_376, "vae": 5_376, "gan": 6_656, "raw": 3_072}
FEATURE_SETS = {"ali": "released", "vae": "released", "gan": "dcgan", "raw": "pixels"}
SOURCES = ("ali", "gan", "raw")  # what the end-to-end run trains and extracts
PARTS = {"pool": 1_197, "valid": 300, "test": 300}
TRIALS_SORT = ["dataset", "model", "trial"]


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
    assert s["image_seeds"] == [0, 1, 2] and s["draw_seed"] == 1000 and s["solver"] == "exact"
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
    ({"image_seeds": []}, "svm.image_seeds"),
    ({"image_seeds": [0, 0]}, "svm.image_seeds"),
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
def context(root: Path, **inputs: Path) -> RunContext:
    """How the tests run a job: on the CPU, data under ``root``, no progress, ``--in NAME=PATH`` inputs."""
    return RunContext(device="cpu", data_root=root, checkpoint_every=1000, log_every=1000, progress=False,
                      inputs={name: [path] for name, path in inputs.items()})


@pytest.fixture(scope="module")
def e2e(tmp_path_factory, smoke_cfg) -> dict:
    """Tiny ALI and GAN runs on digits, then features (train) and trials (evaluate) of ali, gan and raw
    through the experiments' train_run / evaluate_run, as `ali train` and `ali evaluate` call them."""
    root = tmp_path_factory.mktemp("svm_e2e")
    image_plan, plan, exp = im.plan(smoke_cfg), svm.plan(smoke_cfg), experiment("svm")
    runs, image_records, records, results = {}, {}, {}, {}
    for model in ("ali", "gan"):
        spec = {**copy.deepcopy(image_plan[f"digits/{model}/seed0"]), "batch_size": 4, "steps": 2}
        run_dir = root / "images" / "digits" / model / "seed0"
        image_records[model] = experiment("images").train_run(spec, run_dir, context(root))
        assert image_records[model]["status"] == "ok"
        runs[model] = run_dir
    for source in SOURCES:
        run_dir = root / "svm" / "digits" / source / "seed0"
        ctx = context(root, **({"run": runs[source]} if source in runs else {}))
        records[source] = exp.train_run(plan[f"svm/digits/{source}/seed0"], run_dir, ctx)
        results[source] = exp.evaluate_run(run_dir, exp.settings(smoke_cfg), ctx)
        write_json(run_dir / METRICS, results[source])  # as `ali evaluate` writes it
    return {"root": root, "settings": svm.settings(smoke_cfg), "plan": plan, "runs": runs,
            "image_records": image_records, "records": records, "results": results}


def svm_dir(e2e, source) -> Path:
    return e2e["root"] / "svm" / "digits" / source / "seed0"


def features(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)  # nothing the suite reads is unpickled


def test_plan_has_one_feature_run_per_source(smoke_cfg):
    s = svm.settings(smoke_cfg)
    plan = svm.plan(smoke_cfg)
    assert list(plan) == [f"svm/digits/{source}/seed0" for source in s["sources"]]
    for key, spec in plan.items():
        assert spec == {"experiment": "svm", "preset": "smoke", "model": key.split("/")[-2], "seed": 0,
                        "dataset": "digits", "settings": s}
    json.dumps(plan)  # the workflow passes each spec as JSON


def test_a_model_source_without_its_image_run_is_refused(smoke_cfg, tmp_path):
    spec = svm.plan(smoke_cfg)["svm/digits/ali/seed0"]
    with pytest.raises(ConfigError, match=re.escape("--in run=DIR")):
        experiment("svm").train_run(spec, tmp_path / "ali", context(tmp_path))
    assert not (tmp_path / "ali" / svm.FEATURES).exists()


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
def test_features_and_record(e2e, source):
    blob = features(svm_dir(e2e, source) / svm.FEATURES)
    f, meta = blob["features"], blob["meta"]
    parts = svm.protocol_data("digits", e2e["root"])
    for part, n in PARTS.items():
        assert f[part].shape == (n, DIMS[source]) and f[part].dtype == torch.float32
        assert torch.isfinite(f[part]).all()
        assert torch.equal(f[f"{part}_labels"], parts[part][1])
    assert meta["source"] == source and meta["dataset"] == "digits"
    assert meta["feature_set"] == FEATURE_SETS[source] and meta["feature_dim"] == DIMS[source]
    assert "code_version" in meta["provenance"]
    # the run record: the planned spec, and where its features came from
    record = e2e["records"][source]
    assert read_record(svm_dir(e2e, source)) == json.loads(json.dumps(record))
    assert record["spec"] == e2e["plan"][f"svm/digits/{source}/seed0"] and record["status"] == "ok"
    assert not record["diverged"] and record["wall_time_s"] >= 0
    assert record["source_run"] == meta["run_dir"] and record["source_config_hash"] == meta["run_config_hash"]
    assert record["provenance"] == meta["provenance"]
    if source == "raw":
        assert meta["run_dir"] == "" and meta["run_config_hash"] == ""
        assert torch.equal(f["pool"], parts["pool"][0].float().div(255).flatten(1))
    else:
        assert meta["run_dir"] == str(e2e["runs"][source])
        assert meta["run_config_hash"] == e2e["image_records"][source]["config_hash"]
        # the features are those of the trained model, loaded in inference mode
        model, _ = im.load(e2e["runs"][source])
        assert not model.training and not any(m.training for m in model.modules())
        expected = extract(source, model, parts["valid"][0][:20])
        assert torch.allclose(f["valid"][:20], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
def test_metrics_json(e2e, source):
    s = e2e["settings"]
    r = json.loads((svm_dir(e2e, source) / METRICS).read_text())
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
    assert r["meta"] == features(svm_dir(e2e, source) / svm.FEATURES)["meta"]
    assert r["settings"] == json.loads(json.dumps(s))
    assert r["settings_hash"] and r["wall_time_s"] >= 0 and "packages" in r["provenance"]
    if source == "raw":  # pixels of digits with 100 labels: far better than chance
        assert np.mean(errors) < 40


@pytest.mark.slow
def test_trials_frame_and_table1_rows(e2e):
    trials = runs_frame([svm_dir(e2e, s) for s in SOURCES[::-1]], sort=TRIALS_SORT)  # any order in, sorted out
    assert len(trials) == len(SOURCES) * 10
    assert trials.groupby("model").size().to_dict() == {s: 10 for s in SOURCES}
    assert set(trials["dataset"]) == {"digits"} and set(trials["preset"]) == {"smoke"}
    assert (trials["n_labelled"] == 100).all() and (trials["solver"] == "exact").all()
    assert (trials["status"] == "ok").all()
    for source in SOURCES:
        rows = trials[trials["model"] == source]
        r = e2e["results"][source]
        assert rows["trial"].tolist() == list(range(10))
        assert rows["error_pct"].tolist() == [t["error_pct"] for t in r["trials"]]
        assert rows["draw_seed"].tolist() == [t["seed"] for t in r["trials"]]
        assert (rows["feature_dim"] == DIMS[source]).all()
        assert (rows["feature_set"] == FEATURE_SETS[source]).all()
        assert (rows["config_hash"] == e2e["records"][source]["config_hash"]).all()
    assert (trials["scale"].str.contains("NOT comparable")).all()

    table = table1_svm_rows(trials)
    assert table["model"].tolist() == list(SOURCES)
    assert (table["method"] == "L2-SVM").all() and (table["n_trials"] == 10).all()
    for _, row in table.iterrows():
        errors = np.array([t["error_pct"] for t in e2e["results"][row["model"]]["trials"]])
        assert row["error_pct_mean"] == pytest.approx(errors.mean())
        assert row["error_pct_std"] == pytest.approx(errors.std(ddof=1))
        assert row["error_pct_std_ddof0"] == pytest.approx(errors.std(ddof=0))  # the released script's numpy.std
        assert row["error_pct_min"] == errors.min() and row["error_pct_max"] == errors.max()
        assert row["feature_dim"] == DIMS[row["model"]] and row["n_labelled"] == 100
        assert row["C"] == e2e["results"][row["model"]]["C"]
    # digits is not SVHN: no published number beside ours
    assert table["paper_error_pct"].isna().all() and table["paper_error"].isna().all()
    assert (table["paper_model"] == "").all()


def relabelled(run_dir: Path, dest: Path, **spec_values) -> Path:
    """A copy of a run directory whose record's spec says ``spec_values`` (the numbers stay ours)."""
    shutil.copytree(run_dir, dest)
    record = read_record(dest)
    record["spec"].update(spec_values)
    (dest / RECORD).write_text(json.dumps(record))
    return dest


@pytest.mark.slow
def test_table1_paper_columns_only_for_svhn(e2e, tmp_path):
    """The same runs relabelled as SVHN: the paper's numbers appear in the paper_* columns."""
    dirs = [relabelled(svm_dir(e2e, s), tmp_path / s, dataset="svhn", preset="paper") for s in SOURCES]
    table = table1_svm_rows(runs_frame(dirs, sort=TRIALS_SORT)).set_index("model")
    assert table.loc["ali", "paper_error_pct"] == 19.14 and table.loc["ali", "paper_error"] == 0.50
    assert table.loc["ali", "paper_model"] == "ALI (L2-SVM)" and table.loc["ali", "paper_error_convention"]
    assert table.loc["gan", "paper_error_pct"] == 22.18 and np.isnan(table.loc["gan", "paper_error"])
    assert "Radford" in table.loc["gan", "paper_model"]
    assert np.isnan(table.loc["raw", "paper_error_pct"]) and table.loc["raw", "paper_model"] == ""
    assert (table["dataset"] == "svhn").all() and (table["preset"] == "paper").all()
    # ours stay ours
    errors = [t["error_pct"] for t in e2e["results"]["ali"]["trials"]]
    assert table.loc["ali", "error_pct_mean"] == pytest.approx(np.mean(errors))


# ------------------------------------------------------------------------------------------ CLI
@pytest.mark.slow
def test_cli_train_features_from_the_configfile(e2e, tmp_path):
    out = tmp_path / "ali"
    rc = cli.main(["train", "--configfile", str(SMOKE), "--run", "svm/digits/ali/seed0", "--out", str(out),
                   "--in", f"run={e2e['runs']['ali']}", "--data-root", str(e2e["root"]), "--device", "cpu"])
    assert rc == 0 and (out / svm.FEATURES).is_file()
    got, ref = features(out / svm.FEATURES), features(svm_dir(e2e, "ali") / svm.FEATURES)
    assert got["meta"]["feature_dim"] == 5_376
    for key, value in ref["features"].items():
        assert torch.allclose(got["features"][key].float(), value.float(), rtol=1e-5, atol=1e-5), key
    assert read_record(out)["spec"] == e2e["plan"]["svm/digits/ali/seed0"]


@pytest.mark.slow
def test_cli_train_raw_features_with_a_spec(e2e, tmp_path):
    out = tmp_path / "raw"
    rc = cli.main(["train", "--spec", json.dumps(e2e["plan"]["svm/digits/raw/seed0"]), "--out", str(out),
                   "--data-root", str(e2e["root"]), "--device", "cpu"])
    assert rc == 0
    got, ref = features(out / svm.FEATURES), features(svm_dir(e2e, "raw") / svm.FEATURES)
    assert all(torch.equal(got["features"][k], v) for k, v in ref["features"].items())


def copy_features_run(e2e, source: str, dest: Path) -> Path:
    """A source's run directory without its metrics: what `ali evaluate` finds after `ali train`."""
    shutil.copytree(svm_dir(e2e, source), dest, ignore=shutil.ignore_patterns(METRICS))
    return dest


@pytest.mark.slow
def test_cli_evaluate_and_report_table1(e2e, tmp_path):
    dirs = [copy_features_run(e2e, source, tmp_path / "svm" / source) for source in SOURCES]
    for source, d in zip(SOURCES, dirs):
        rc = cli.main(["evaluate", "--run-dir", str(d), "--out", str(d / METRICS), "--device", "cpu"])
        assert rc == 0 and (d / METRICS).is_file()
        r = json.loads((d / METRICS).read_text())
        ref = e2e["results"][source]
        assert r["trials"] == ref["trials"] and r["C"] == ref["C"] and r["valid_errors"] == ref["valid_errors"]
    kplus1 = semisup.plan(load_config(SMOKE))["digits/ali_kplus1/labels100/seed0"]
    kplus1_run = write_fake_semisup_run(tmp_path / "semisup", kplus1, 12.5)
    out_trials, out_table = tmp_path / "t" / "svm_trials.csv", tmp_path / "t" / "table1.csv"
    svm_in = [f"svm={d}" for d in dirs]
    rc = cli.main(["report", "table1", "--in", *svm_in, f"semisup={kplus1_run}", "--out", f"trials={out_trials}",
                   f"table={out_table}"])
    assert rc == 0
    trials = pd.read_csv(out_trials)
    assert len(trials) == 30 and set(trials["model"]) == set(SOURCES)
    table = pd.read_csv(out_table)
    assert table["model"].tolist() == [*SOURCES, "ali_kplus1"]
    assert table["method"].tolist() == ["L2-SVM"] * 3 + ["K+1"]
    assert table.loc[3, "error_pct_mean"] == 12.5 and table.loc[3, "n_labelled"] == 100
    assert table.loc[0, "feature_dim"] == 5_376 and table.loc[1, "feature_dim"] == 6_656
    # without semisup runs: the L2-SVM rows alone
    rc = cli.main(["report", "table1", "--in", *svm_in, "--out", f"trials={out_trials}", f"table={out_table}"])
    assert rc == 0 and pd.read_csv(out_table)["model"].tolist() == list(SOURCES)


@pytest.mark.slow
def test_ali_score_svm_on_our_encoder_features_reproduces_our_trials_rows(e2e, tmp_path):
    """`ali score svm` on the ALI run's own features, saved as a user would save theirs: our svm_trials rows."""
    f = features(svm_dir(e2e, "ali") / svm.FEATURES)["features"]
    args = []
    for flag, part in (("--train", "pool"), ("--val", "valid"), ("--test", "test")):
        torch.save(f[part], tmp_path / f"{part}.pt")
        np.save(tmp_path / f"{part}_labels.npy", f[f"{part}_labels"].numpy())
        args += [flag, str(tmp_path / f"{part}.pt"), str(tmp_path / f"{part}_labels.npy")]
    out = tmp_path / "trials.csv"
    assert cli.main(["score", "svm", *args, "--configfile", str(SMOKE), "--device", "cpu", "--out", str(out)]) == 0
    ours = runs_frame([svm_dir(e2e, "ali")], sort=TRIALS_SORT)
    cols = ["trial", "draw_seed", "C", "error_pct", "feature_dim", "n_labelled", "settings_hash"]
    pd.testing.assert_frame_equal(pd.read_csv(out)[cols], ours[cols], check_dtype=False)


def test_cli_bad_svm_config_exits_2_naming_the_key(tmp_path, capsys):
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["svm"]["features"] = "all_layers"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    rc = cli.main(["train", "--configfile", str(bad), "--run", "svm/digits/raw/seed0", "--out", str(tmp_path / "raw"),
                   "--data-root", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "svm.features" in err and "all_layers" in err
    assert not (tmp_path / "raw").exists()


# ----------------------------------------------------------------------------- workflow dry runs
def outputs(text: str) -> set[str]:
    return {p.strip() for line in re.findall(r"^\s+output: (.*)$", text, flags=re.M) for p in line.split(",")}


def svm_jobs_carry_the_plan(text: str, cfg: dict, results: str) -> None:
    """Each features job trains its planned spec, with --in run=DIR of its image run (none for pixels);
    each trials job evaluates that run directory."""
    plan = svm.plan(cfg)
    assert sorted(train_specs(text, "svm"), key=canonical) == sorted(plan.values(), key=canonical)
    s = svm.settings(cfg)
    image_run = f"{results}/images/{s['dataset']}/{{}}/{{}}"
    for j in jobs(text, "svm_features"):
        source, seed = j["output"].split("/")[-3:-1]
        assert in_args(j["shell"], "run") == ([] if source == "raw" else [image_run.format(source, seed)]), j["shell"]
    for j in jobs(text, "svm_trials"):
        run = j["output"].removesuffix("/metrics.json")
        assert re.search(rf"\$ALI evaluate --run-dir {re.escape(run)} --out {re.escape(j['output'])} ", j["shell"])


PAPER_SVM_RUNS = [f"{s}/seed{k}" for s in ("ali", "vae", "gan") for k in (0, 1, 2)] + ["raw/seed0"]


def test_paper_plan_trains_each_source_over_three_seeds_and_pixels_once(paper_cfg):
    assert sorted(svm.plan(paper_cfg)) == sorted(f"svm/svhn/{r}" for r in PAPER_SVM_RUNS)
    image_runs = im.plan(paper_cfg)
    assert {f"svhn/{m}/seed{k}" for m in ("ali", "vae", "gan") for k in (0, 1, 2)} <= set(image_runs)
    assert not any(k.startswith("cifar10/") and not k.endswith("seed0") for k in image_runs)  # svm.dataset only


@pytest.mark.slow
def test_paper_dry_run_plans_the_svm_jobs(workdir, paper_cfg):
    text = dry_run(workdir, "--cores", "8", "results/table1.csv")
    stats = job_stats(text)
    assert stats["svm_features"] == 10 and stats["svm_trials"] == 10 and stats["table1"] == 1  # 3 seeds, raw once
    assert stats["images_train"] == 9
    out = outputs(text)
    for run in PAPER_SVM_RUNS:
        assert f"results/svm/svhn/{run}/features.pt" in out
        assert f"results/svm/svhn/{run}/metrics.json" in out
    for model in ("ali", "gan", "vae"):
        for seed in (0, 1, 2):
            assert f"results/images/svhn/{model}/seed{seed}/record.json" in out
    assert {"results/svm_trials.csv", "results/table1.csv"} <= out
    svm_jobs_carry_the_plan(text, paper_cfg, "results")  # the paper settings, in every features spec
    (table1,) = jobs(text, "table1")
    assert sorted(in_args(table1["shell"], "svm")) == sorted(f"results/svm/svhn/{r}" for r in PAPER_SVM_RUNS)


@pytest.mark.slow
def test_smoke_dry_run_writes_under_results_smoke(workdir, smoke_cfg):
    text = dry_run(workdir, "--configfile", "config/smoke.yaml", "--cores", "8", "results/smoke/table1.csv")
    stats = job_stats(text)
    assert stats["svm_features"] == 4 and stats["svm_trials"] == 4 and stats["table1"] == 1
    assert stats["images_train"] == 3 and "download_data" not in stats  # digits ships with scikit-learn
    out = outputs(text)
    assert out and all(p.startswith("results/smoke/") for p in out)
    for source in ("ali", "vae", "gan", "raw"):
        assert f"results/smoke/svm/digits/{source}/seed0/metrics.json" in out
    svm_jobs_carry_the_plan(text, smoke_cfg, "results/smoke")
