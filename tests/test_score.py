"""`ali score`: other people's samples and features, measured exactly as our runs are (ali/score.py).

- mixture: a tiny ALI run of the tiny preset, evaluated by `evaluate_run`; its samples, codes and
  reconstructions dumped to .npy / .pt / .csv and scored from the files give that run's metrics, to the
  last bit. Hand-made sample sets (one mode, the 25 modes evenly, NaN rows and far samples) give the
  numbers worked out in their docstrings.
- svm: the raw-pixel source of the smoke preset's digits, trained (features) and evaluated (trials)
  through the svm experiment; its features dumped and scored reproduce its svm_trials.csv rows.
- bad input: one line on stderr naming the file and what was expected, exit status 2.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import SMOKE, TINY

from ali import cli
from ali import score as score_module
from ali.config import load_config
from ali.data.mixture import MixtureData, heldout_set
from ali.experiments import mixture as mx
from ali.experiments import svm
from ali.experiments.base import RunContext, experiment, write_json
from ali.train.record import METRICS
from ali.experiments.rows import runs_frame
from ali.report.tables import table1_svm_rows

CENTRES = MixtureData().centres()  # component k = (grid[k // 5], grid[k % 5]); 12 is (0, 0)


def score(*args: str) -> int:
    return cli.main(["score", *map(str, args)])


def save_csv(path: Path, a: np.ndarray) -> Path:
    np.savetxt(path, a, delimiter=",", fmt="%.9g", header="x,y", comments="")  # %.9g: float32 round-trips
    return path


# ------------------------------------------------------------------------------ one of our tiny runs
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> dict:
    """fixed/ali/run0 of the tiny preset (20 steps), its metrics, and what its evaluation measured, in files.

    Its init std is 0.5 instead of 0.02: at 0.02 all its samples sit at (0, 0) after 20 steps, and one
    mode at 100 % high quality cannot tell one batch of samples from another.
    """
    cfg = load_config(TINY)
    settings = mx.eval_settings(cfg)
    root = tmp_path_factory.mktemp("tiny")
    spec = {**copy.deepcopy(mx.plan(cfg)["fixed/ali/run0"]), "init_std": 0.5}
    mx.train_run(spec, root / "run", device="cpu", progress=False)
    metrics = mx.evaluate_run(root / "run", settings)
    model, record = mx.load_trained(root / "run")
    out = mx.run_outputs(model, mx.mixture_data(record["spec"]), settings)
    files = {"samples": root / "samples.npy", "latents": root / "latents.pt", "reconstructions": root / "rec.csv"}
    np.save(files["samples"], torch.cat([out.x_paper, out.x_strict]).numpy())
    torch.save(out.codes.latents.clone(), files["latents"])
    save_csv(files["reconstructions"], out.codes.reconstructions.numpy())
    return {"metrics": metrics, "files": files, "settings": settings, "root": root}


def test_scoring_a_runs_own_outputs_gives_its_metrics_exactly(tiny_run):
    m, f = tiny_run["metrics"], tiny_run["files"]
    assert m["status"] == "ok" and not math.isnan(m["qz_mmd"])
    assert m["modes"] > m["strict_modes"] > 1 and 0 < m["hq_pct"] < 100  # numbers that depend on the samples
    out = tiny_run["root"] / "row.csv"
    rc = score("mixture", f["samples"], "--latents", f["latents"], "--reconstructions", f["reconstructions"],
               "--configfile", TINY, "--out", out)
    assert rc == 0
    (row,) = pd.read_csv(out).to_dict("records")
    for name in mx.RUN_METRICS:
        assert row[name] == m[name], name  # exactly, through the CSV
    assert row["status"] == "ok" and row["metrics_version"] == m["metrics_version"]
    assert row["inputs_are_heldout"]  # no --inputs: the config's held-out set
    for key, value in tiny_run["settings"].items():  # the settings it was measured under, stated
        assert row[f"eval_{key}"] == value

    # the held-out set given explicitly is the same measurement
    x_held, _ = heldout_set(mx.mixture_data(mx.plan(load_config(TINY))["fixed/ali/run0"]))
    inputs = tiny_run["root"] / "inputs.npy"
    np.save(inputs, x_held)
    rc = score("mixture", f["samples"], "--latents", f["latents"], "--reconstructions", f["reconstructions"],
               "--inputs", inputs, "--configfile", TINY, "--out", out)
    (again,) = pd.read_csv(out).to_dict("records")
    assert rc == 0 and again["inputs_are_heldout"]
    assert all(again[name] == m[name] for name in mx.RUN_METRICS)


def test_samples_alone_give_the_coverage_metrics_and_no_inference_ones(tiny_run, capsys):
    m = tiny_run["metrics"]
    assert score("mixture", tiny_run["files"]["samples"], "--configfile", TINY) == 0
    printed = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    for name in ("modes", "strict_modes", "hq_pct", "reverse_kl", "nonfinite_pct"):
        assert printed[name] == (f"{m[name]:.6g}" if isinstance(m[name], float) else str(m[name])), name
    assert printed["qz_mmd"] == "nan" and printed["eval_n_samples"] == str(tiny_run["settings"]["n_samples"])


# ------------------------------------------------------------------------------- hand-made samples
@pytest.fixture(scope="module")
def small_eval(tmp_path_factory) -> Path:
    """The paper preset with 50 paper-count samples and 25 strict ones."""
    path = tmp_path_factory.mktemp("cfg") / "small_eval.yaml"
    path.write_text(yaml.safe_dump({"preset": "handmade", "mixture": {"eval": {"n_samples": 50,
                                                                                 "n_strict_samples": 25}}}))
    return path


def row_of(samples: np.ndarray, path: Path, cfg: Path, **files: Path) -> dict:
    np.save(path, samples.astype(np.float32))
    out = path.with_suffix(".row.csv")
    extra = [a for name, p in files.items() for a in (f"--{name}", p)]
    assert score("mixture", path, *extra, "--configfile", cfg, "--out", out) == 0
    return pd.read_csv(out).to_dict("records")[0]


def test_all_samples_in_one_mode(small_eval, tmp_path):
    """75 samples near (0, 0), within 0.1 < 3 std: one mode either way, all high quality, and the reverse
    KL of a histogram on one of 25 modes is log 25."""
    x = CENTRES[[12]] + np.random.default_rng(0).uniform(-0.07, 0.07, size=(75, 2))
    r = row_of(x, tmp_path / "one.npy", small_eval)
    assert (r["modes"], r["strict_modes"], r["hq_pct"], r["nonfinite_pct"]) == (1, 1, 100.0, 0.0)
    assert r["reverse_kl"] == pytest.approx(math.log(25), rel=1e-12)
    assert r["status"] == "ok"


def test_samples_evenly_over_the_25_modes(small_eval, tmp_path):
    """Every centre twice in the 50, once in the 25: 25 modes, 25 strict, 100 % high quality, KL 0."""
    x = np.concatenate([CENTRES, CENTRES, CENTRES])
    r = row_of(x, tmp_path / "even.npy", small_eval)
    assert (r["modes"], r["strict_modes"], r["hq_pct"], r["reverse_kl"]) == (25, 25, 100.0, 0.0)


def test_nan_rows_and_far_samples(small_eval, tmp_path):
    """Paper batch: components 0..8 five times each (45) and 5 NaN rows: 9 modes, 10 % non-finite.
    Strict batch (25): 10 on centre 0, 10 at 0.1 from centre 1 (inside 3 x 0.05), 2 at 0.2 from centre 2
    (outside), 3 rows with inf or NaN: 20 of 25 high quality (80 %), 2 strict modes, each half of the
    high-quality histogram, so KL = 2 x 0.5 log(25 x 0.5) = log 12.5."""
    paper = np.concatenate([np.repeat(CENTRES[:9], 5, axis=0), np.full((5, 2), np.nan)])
    strict = np.concatenate([np.repeat(CENTRES[[0]], 10, 0), np.repeat(CENTRES[[1]] + [0.1, 0.0], 10, 0),
                             np.repeat(CENTRES[[2]] + [0.0, 0.2], 2, 0), [[np.inf, 0.0], [np.nan, 1.0], [0.0, -np.inf]]])
    r = row_of(np.concatenate([paper, strict]), tmp_path / "nan.npy", small_eval)
    assert (r["modes"], r["nonfinite_pct"], r["status"]) == (9, 10.0, "nonfinite_samples")
    assert (r["strict_modes"], r["hq_pct"]) == (2, 80.0)
    assert r["reverse_kl"] == pytest.approx(math.log(12.5), rel=1e-12)


def test_a_perfect_autoencoder_on_the_held_out_set(small_eval, tmp_path):
    """Reconstructions equal to the inputs: error 0, every reconstruction in its own mode, 25 modes."""
    x_held, _ = heldout_set(mx.data_from_config(load_config(small_eval)))
    np.save(tmp_path / "z.npy", x_held / 2)
    np.save(tmp_path / "rec.npy", x_held)
    r = row_of(np.concatenate([CENTRES] * 3), tmp_path / "s.npy", small_eval, latents=tmp_path / "z.npy",
               reconstructions=tmp_path / "rec.npy")
    assert (r["recon_sqerr"], r["recon_same_mode_pct"], r["recon_modes"]) == (0.0, 100.0, 25)
    assert r["qz_gauss_kl"] > 0.1 and r["qz_mmd"] > 0  # q(z) = x / 2 is a grid, not N(0, I)


# ------------------------------------------------------------------------------------------------ svm
@pytest.fixture(scope="module")
def raw_svm(tmp_path_factory) -> dict:
    """The smoke preset's raw-pixel source on digits: features (train) and trials (evaluate), as the
    workflow runs them; then its features dumped to files as a user would give them."""
    root = tmp_path_factory.mktemp("svm")
    cfg = load_config(SMOKE)
    exp, run_dir = experiment("svm"), root / "svm" / "digits" / "raw" / "seed0"
    ctx = RunContext(device="cpu", data_root=root, checkpoint_every=1000, log_every=1000, progress=False, inputs={})
    exp.train_run(svm.plan(cfg)["svm/digits/raw/seed0"], run_dir, ctx)
    write_json(run_dir / METRICS, exp.evaluate_run(run_dir, exp.settings(cfg), ctx))
    f = torch.load(run_dir / svm.FEATURES, map_location="cpu", weights_only=True)["features"]
    files = {}
    for part in ("pool", "valid", "test"):
        files[part] = (root / f"{part}.npy", root / f"{part}_labels.csv")
        np.save(files[part][0], f[part].numpy())
        np.savetxt(files[part][1], f[f"{part}_labels"].numpy(), fmt="%d")
    files["train"] = (root / "train.pt", root / "train_labels.pt")  # pool then valid: digits' whole 'train'
    torch.save(torch.cat([f["pool"], f["valid"]]), files["train"][0])
    torch.save(torch.cat([f["pool_labels"], f["valid_labels"]]), files["train"][1])
    return {"root": root, "trials": runs_frame([run_dir], sort=["dataset", "model", "trial"]), "files": files,
            "features": f, "settings": exp.settings(cfg)}


COMPARED = ["trial", "draw_seed", "C", "error_pct", "n_labelled", "feature_dim", "solver", "settings_hash"]


@pytest.mark.parametrize("with_val", [True, False])
def test_scoring_our_features_reproduces_our_svm_trials_rows(raw_svm, tmp_path, with_val):
    f = raw_svm["files"]
    split = ["--train", *f["pool"], "--val", *f["valid"]] if with_val else ["--train", *f["train"]]
    out, table = tmp_path / "trials.csv", tmp_path / "table.csv"
    rc = score("svm", *split, "--test", *f["test"], "--configfile", SMOKE, "--name", "raw", "--device", "cpu",
               "--out", out, "--table", table)
    assert rc == 0
    ours, theirs = raw_svm["trials"], pd.read_csv(out)
    assert len(theirs) == len(ours) == 10
    pd.testing.assert_frame_equal(theirs[COMPARED], ours[COMPARED], check_dtype=False)
    (row,) = pd.read_csv(table).to_dict("records")
    (ref,) = table1_svm_rows(ours).to_dict("records")
    for key in ("n_trials", "C", "error_pct_mean", "error_pct_std", "error_pct_std_ddof0", "error_pct_min",
                "error_pct_max"):
        assert row[key] == pytest.approx(ref[key], rel=1e-12, abs=0), key
    assert row["protocol_version"].startswith("l2svm-protocol/")


def test_without_val_the_train_features_are_cut_as_the_released_code_cuts_them(raw_svm):
    """digits' whole 'train' (pool then valid, 1,497 rows) gives back the pool and validation rows exactly."""
    parts = score_module.svm_parts(raw_svm["settings"], raw_svm["files"]["train"], raw_svm["files"]["test"])
    assert parts.keys() == raw_svm["features"].keys()
    for key, value in raw_svm["features"].items():
        assert torch.equal(parts[key], value), key


# ------------------------------------------------------------------------------------------ bad input
def one_line_error(rc: int, capsys, *words: str) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    for word in words:
        assert str(word) in err, (word, err)
    return err


def test_bad_mixture_samples_name_the_file(small_eval, tmp_path, capsys):
    cases = {"three_cols.npy": np.zeros((75, 3)), "too_few.npy": np.zeros((74, 2)), "flat.npy": np.zeros(150)}
    for name, a in cases.items():
        np.save(tmp_path / name, a)
        one_line_error(score("mixture", tmp_path / name, "--configfile", small_eval), capsys, tmp_path / name, "(75, 2)")
    torch.save({"samples": torch.zeros(75, 2)}, tmp_path / "dict.pt")
    one_line_error(score("mixture", tmp_path / "dict.pt", "--configfile", small_eval), capsys, "dict.pt", "one tensor")
    (tmp_path / "words.csv").write_text("x,y\n1,2\nfoo,bar\n")
    one_line_error(score("mixture", tmp_path / "words.csv", "--configfile", small_eval), capsys, "words.csv", "numbers")
    one_line_error(score("mixture", tmp_path / "s.txt", "--configfile", small_eval), capsys, "s.txt", ".npy")
    one_line_error(score("mixture", tmp_path / "absent.npy"), capsys, "absent.npy", "no such file")


def test_bad_mixture_codes_name_the_file(small_eval, tmp_path, capsys):
    np.save(tmp_path / "s.npy", np.concatenate([CENTRES] * 3))
    n_held = load_config(small_eval)["mixture"]["data"]["n_heldout"]
    np.save(tmp_path / "z.npy", np.zeros((n_held - 1, 2)))
    np.save(tmp_path / "rec.npy", np.zeros((n_held, 2)))
    base = ["mixture", tmp_path / "s.npy", "--configfile", small_eval]
    one_line_error(score(*base, "--latents", tmp_path / "z.npy"), capsys, "z.npy", "--reconstructions")
    one_line_error(score(*base, "--latents", tmp_path / "z.npy", "--reconstructions", tmp_path / "rec.npy"),
                   capsys, "z.npy", f"({n_held}, d)", f"{n_held - 1:,} rows")
    inputs = np.zeros((n_held, 2))
    inputs[3] = np.nan
    np.save(tmp_path / "x.npy", inputs)
    np.save(tmp_path / "z.npy", np.zeros((n_held, 2)))
    one_line_error(score(*base, "--latents", tmp_path / "z.npy", "--reconstructions", tmp_path / "rec.npy",
                         "--inputs", tmp_path / "x.npy"), capsys, "x.npy", "NaN", "row 3")


def test_bad_svm_features_and_labels_name_the_file(raw_svm, tmp_path, capsys):
    f = raw_svm["files"]
    pool = np.load(f["pool"][0])
    args = lambda train: ["svm", "--train", *train, "--val", *f["valid"], "--test", *f["test"],  # noqa: E731
                          "--configfile", SMOKE, "--device", "cpu"]
    nan = pool.copy()
    nan[7, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    one_line_error(score(*args((tmp_path / "nan.npy", f["pool"][1]))), capsys, "nan.npy", "NaN", "row 7")
    np.savetxt(tmp_path / "short.csv", np.zeros(len(pool) - 1), fmt="%d")
    one_line_error(score(*args((f["pool"][0], tmp_path / "short.csv"))), capsys, "short.csv", f"{len(pool):,} labels")
    np.save(tmp_path / "few.npy", pool[:30])
    np.save(tmp_path / "few_labels.npy", np.arange(30) % 10)  # 3 of each class; smoke draws 10
    one_line_error(score(*args((tmp_path / "few.npy", tmp_path / "few_labels.npy"))), capsys, "few_labels.npy",
                   "svm.n_per_class")
    np.save(tmp_path / "narrow.npy", pool[:, :5])
    one_line_error(score("svm", "--train", *f["pool"], "--val", tmp_path / "narrow.npy", f["valid"][1], "--test",
                         *f["test"], "--configfile", SMOKE), capsys, "narrow.npy", f"{pool.shape[1]}")
    one_line_error(score("svm", "--train", *f["pool"], "--test", *f["test"], "--configfile", SMOKE), capsys,
                   "pool.npy", "--val", "1,497")
