"""Plug-in mixture models (``mixture.extra_models``, contract in ``ali/models/plugin.py``), with the
example ``examples/packed_ali.py``.

Fast: a plug-in's runs are ALI and GAN run i's (seed, hyperparameter draw, budget, data) and change
no built-in spec; a bad import path, a class that breaks the contract or a clashing name is one clear
config error; the version follows ``__version__`` or the source; a run trains, resumes, records its
import path and version, and is evaluated with the inference metrics. Slow: the example through the
mixture DAG in a copy of the workflow, then its rows in both tables, its Figure 8 column and its
block of the report page.
"""

from __future__ import annotations

import json
import struct
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from conftest import PAPER, PNG_MAGIC, REPO, TINY, job_stats, jobs, make_workdir, output, snakemake

from ali.config import ConfigError, deep_update, load_config
from ali.experiments import mixture as mx
from ali.experiments.base import RunContext
from ali.experiments.rows import run_rows
from ali.train.record import MODEL_FILE

EXAMPLE = "examples.packed_ali:PackedALI"
CONFIG_ARG = 'mixture={extra_models: {packed_ali: "examples.packed_ali:PackedALI"}}'  # as README prints it


def with_plugins(cfg: dict, **models: str) -> dict:
    return deep_update(yaml.safe_load(yaml.safe_dump(cfg)), {"mixture": {"extra_models": models}})


TINY_CFG = load_config(TINY)


# ------------------------------------------------------------------------------------------- plan
def test_plugin_runs_share_ali_and_gan_run_i_and_change_no_builtin_spec():
    plain = mx.plan(TINY_CFG)
    plan = mx.plan(with_plugins(TINY_CFG, packed_ali=EXAMPLE))
    plugged = {k: s for k, s in plan.items() if s["model"] == "packed_ali"}
    assert {k: s for k, s in plan.items() if k not in plugged} == plain  # built-in specs (and hashes) unchanged
    assert sorted(plugged) == sorted(k.replace("/ali/", "/packed_ali/") for k, s in plain.items() if s["model"] == "ali")
    for key, spec in plugged.items():
        ali = plan[key.replace("/packed_ali/", "/ali/")]
        assert {k for k in spec if spec[k] != ali.get(k)} == {"model", "model_class", "model_version"}
        assert spec["model_class"] == EXAMPLE and spec["model_version"] == "1"
    assert mx.Mixture.plugin_models(plan) == ["packed_ali"] and mx.Mixture.plugin_models(plain) == []


def test_presets_name_no_plugin():
    assert load_config(PAPER)["mixture"]["extra_models"] == {}
    assert not any(s.get("model_class") for s in mx.plan(TINY_CFG).values())


# ------------------------------------------------------------------------------------ config errors
BAD_MODULE = """
    import torch
    from ali.models.base import Model


    class NoDecode:  # every member of the contract but decode
        loss_names = ("loss",)

        @classmethod
        def from_mixture(cls, nets, update, options):
            return cls()

        def optimized_parameters(self):
            return {}

        def train_step(self, x):
            return {}

        def prior(self, n):
            return torch.zeros(n, 2)


    class NotAModel(NoDecode):
        def decode(self, z):
            return z


    class NoEncode(Model):  # has_encoder stays True, encode stays Model's
        loss_names = ("loss",)

        @classmethod
        def from_mixture(cls, nets, update, options):
            return cls(options)

        def optimized_parameters(self):
            return {}

        def train_step(self, x):
            return {}


    not_a_class = 3
"""


@pytest.fixture
def bad_module(tmp_path, monkeypatch):
    (tmp_path / "plugbad.py").write_text(textwrap.dedent(BAD_MODULE))
    (tmp_path / "plugbroken.py").write_text("import torch\ndef broken(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("plugbad", "plugbroken"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize("name,path,says", [
    ("packed_ali", "examples.packed_ali", "must be an import path 'package.module:Class'"),
    ("packed_ali", "examples/packed_ali.py:PackedALI", "must be an import path"),
    ("packed_ali", "examples.nowhere:PackedALI", "cannot import 'examples.nowhere'"),
    ("packed_ali", "examples.packed_ali:Packed", "module 'examples.packed_ali' has no 'Packed'"),
    ("mine", "plugbad:NoDecode", "plugbad:NoDecode lacks decode;"),
    ("mine", "plugbad:NotAModel", "must subclass ali.models.base.Model"),
    ("mine", "plugbad:NoEncode", "has no encode(x); define it, or set has_encoder = False"),
    ("mine", "plugbad:not_a_class", "is not a class"),
    ("mine", "plugbroken:Model", "importing 'plugbroken' raised SyntaxError"),
    ("gan", EXAMPLE, "'gan' is a built-in mixture model"),
    ("Packed-ALI", EXAMPLE, "model name 'Packed-ALI' must be lower case"),
])
def test_a_bad_plugin_entry_is_one_clear_config_error(bad_module, name, path, says):
    with pytest.raises(ConfigError) as err:
        mx.plan(with_plugins(TINY_CFG, **{name: path}))
    message = str(err.value)
    assert says in message and "\n" not in message
    assert message.startswith("config key 'mixture.extra_models")


# ------------------------------------------------------------------------------------------ version
def test_version_is_the_source_hash_without___version___and_a_changed_model_is_refused(tmp_path, monkeypatch):
    source = Path(REPO / "examples" / "packed_ali.py").read_text().replace('__version__ = "1"', "")
    (tmp_path / "plugpacked.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        plan = mx.plan(with_plugins(TINY_CFG, mine="plugpacked:PackedALI"))
        spec = plan["random/mine/run0"]
        assert spec["model_version"].startswith("sha256:") and len(spec["model_version"]) == len("sha256:") + 12
        mx.build(spec)  # the version it was planned with: builds
        (tmp_path / "plugpacked.py").write_text(source + "\n# edited\n")
        with pytest.raises(ConfigError, match="was planned with sha256:.*re-run snakemake"):
            mx.build(spec)
    finally:
        sys.modules.pop("plugpacked", None)


# ---------------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def plugin_spec() -> dict:
    return mx.plan(with_plugins(TINY_CFG, packed_ali=EXAMPLE))["random/packed_ali/run0"]


def train(spec: dict, run_dir: Path, **ctx) -> dict:
    return mx.Mixture().train_run(spec, run_dir, RunContext(device="cpu", progress=False, checkpoint_every=10, **ctx))


def test_a_plugin_run_trains_records_its_model_and_is_evaluated_with_inference(plugin_spec, tmp_path):
    record = train(plugin_spec, tmp_path / "run")
    assert record["status"] == "ok" and record["steps_done"] == plugin_spec["steps"] == 20
    assert record["plugin"] == {"import_path": EXAMPLE, "version": "1"}
    assert record["spec"]["model_class"] == EXAMPLE
    metrics = mx.evaluate_run(tmp_path / "run", mx.eval_settings(TINY_CFG))
    assert metrics["status"] == "ok" and 0 <= metrics["modes"] <= 25
    assert all(k in metrics for k in ("recon_sqerr", "qz_mmd"))  # it has an encoder: the inference metrics
    (tmp_path / "run" / "metrics.json").write_text(json.dumps(metrics))
    (row,) = run_rows(tmp_path / "run")
    assert row["model"] == "packed_ali" and row["model_class"] == EXAMPLE and row["model_version"] == "1"
    assert "plug-in model examples.packed_ali:PackedALI version 1" in row["our_choices"]


def test_a_killed_plugin_run_resumes_to_the_same_weights(plugin_spec, tmp_path):
    train(plugin_spec, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(plugin_spec, tmp_path / "killed", stop_at=10)
    record = train(plugin_spec, tmp_path / "killed")
    assert record["resumed_from_step"] == 10
    whole, resumed = (torch.load(tmp_path / d / MODEL_FILE, weights_only=True) for d in ("whole", "killed"))
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_best_plugin_run_uses_the_ali_and_gan_rule():
    runs = [{"run_dir": d, "model": "packed_ali", "modes": n, "strict_modes": 0, "hq_pct": 0.0, "reverse_kl": 1.0,
             "status": s} for d, n, s in (("a", 3, "ok"), ("b", 9, "diverged"), ("c", 5, "ok"))]
    runs.append({"run_dir": "d", "model": "other", "status": "diverged"})
    assert mx.best_plugin_runs(runs) == {"other": None, "packed_ali": "c"}


# ------------------------------------------------------------------------------------ the workflow
def test_dry_run_plans_the_plugin_through_the_registry(workdir):
    """The README's --config form parses in Snakemake 9; every protocol gets the plug-in's runs, and
    each Figure 8 job reads their metrics."""
    res = snakemake("-n", "-p", "--cores", "8", "--config", CONFIG_ARG, "--", "results/mixture.csv",
                    "results/figure8_random.png", cwd=workdir)
    text = output(res)
    assert res.returncode == 0, text[-3000:]
    trained = [j["output"] for j in jobs(text, "mixture_train") if "/packed_ali/" in j["output"]]
    assert len(trained) == 3 * 10  # three protocols x ten runs, like ALI
    (fig,) = jobs(text, "mixture_figure8")
    assert sum("/packed_ali/" in path for path in fig["input"]) == 10
    assert fig["shell"].count("plugins=results/mixture/random/packed_ali/run") == 10
    assert job_stats(text)["mixture_evaluate"] == len(mx.plan(with_plugins(load_config(PAPER), x=EXAMPLE)))


PLUG_PRESET = {  # one protocol, two runs of 20 steps, no baselines: the plug-in's path through the DAG
    "preset": "plug",
    "mixture": {"data": {"n_train": 2000, "n_heldout": 500}, "nets": {"gen_hidden": 32, "disc_hidden": 16},
                "train": {"epochs": 1, "batch_size": 100},
                "eval": {"n_samples": 1000, "n_strict_samples": 500, "mmd_samples": 200}},
}


@pytest.fixture(scope="module")
def plug_run(tmp_path_factory) -> Path:
    """The mixture DAG with the example plugged in, in a workflow copy whose base preset keeps only the
    random protocol (a --configfile cannot remove a protocol), the plug-in named by --config."""
    repo = make_workdir(tmp_path_factory.mktemp("plug") / "repo")  # with examples/, as a checkout has it
    base = yaml.safe_load((repo / "config" / "paper.yaml").read_text())
    base["mixture"]["protocols"] = {"random": {**base["mixture"]["protocols"]["random"], "n_runs": 2,
                                               "baselines": False}}
    (repo / "config" / "paper.yaml").write_text(yaml.safe_dump(base))
    (repo / "plug.yaml").write_text(yaml.safe_dump(PLUG_PRESET))
    res = snakemake("--configfile", "plug.yaml", "--cores", "2", "--config", CONFIG_ARG, "--", "mixture",
                    cwd=repo, timeout=600)
    assert res.returncode == 0, output(res)[-5000:]
    return repo / "results" / "plug"


def png_width(path: Path) -> int:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    return struct.unpack(">I", data[16:20])[0]


@pytest.mark.slow
def test_the_example_through_the_dag_has_rows_a_figure_column_and_a_report_block(plug_run):
    runs = pd.read_csv(plug_run / "mixture_runs.csv", dtype={"model_version": str})
    table = pd.read_csv(plug_run / "mixture.csv")
    mine = runs[runs["model"] == "packed_ali"].set_index("run")
    ali = runs[runs["model"] == "ali"].set_index("run")
    assert len(mine) == 2 and (mine["model_class"] == EXAMPLE).all() and (mine["model_version"] == "1").all()
    for col in ("seed", "lr", "beta1_torch", "init_std", "steps_planned", "steps_done"):
        assert mine[col].equals(ali[col]), col  # run i's seed, draw and budget
    assert set(mine["status"]) <= {"ok", "diverged", "nonfinite_samples"}
    (row,) = table[table["model"] == "packed_ali"].to_dict("records")
    assert row["n_runs"] == 2 and row["protocol"] == "random"
    published = [c for c in table.columns if c.startswith(("paper_", "pacgan_")) or c == "verdict_test"]
    assert published and all(pd.isna(row[c]) for c in published)  # no published number, no verdict
    # Figure 8: the paper's four columns, then the plug-in's best run (3.0 inches at 110 dpi each)
    assert png_width(plug_run / "figure8_random.png") == 5 * 330
    from ali.report.page import build_page

    html = build_page(plug_run)
    assert "id='plugin-packed_ali'" in html and f"<code>{EXAMPLE}</code>, version 1" in html
    block = html[html.index("id='plugin-packed_ali'"):].split("</table>")[0]
    assert block.count("<tr data-model=") == 3  # ALI, GAN and the plug-in under the random protocol
