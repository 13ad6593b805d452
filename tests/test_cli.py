"""The command line as the workflow and a user call it: `python -m ali ...` in a subprocess."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SMOKE

from ali.cli import build_parser, main
from ali.config import load_config
from ali.experiments import mixture as mx
from ali.experiments.base import EXPERIMENTS, all_reports, experiment, plan_all

SUBCOMMANDS = ("plan", "train", "evaluate", "report", "download", "doctor", "score")


def ali(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ali", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def help_text(command: str, capsys) -> str:
    """``ali COMMAND --help`` in-process (the parser `python -m ali` builds; a subprocess costs a torch import)."""
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_describes_the_suite_and_lists_every_command():
    out = ali("--help")
    assert out.returncode == 0, out.stderr
    assert "Adversarially Learned Inference" in out.stdout
    for command in SUBCOMMANDS:
        assert command in out.stdout


@pytest.mark.parametrize("command,words", [
    ("plan", ["--configfile", "--json", "--experiment", "--cost", "--target", "--device"]),
    ("train", ["--spec", "--out", "--run", "--in", "--device", "--checkpoint-every", "--data-root"]),
    ("evaluate", ["--run-dir", "--out", "--settings", "--configfile", "--device"]),
    ("report", ["--in", "--out", "NAME=PATH", "--settings", "--configfile", "--data-root"]),
    ("download", ["--root", "--flag"]),
    ("doctor", ["--quick", "--device", "--out", "PASS/FAIL/SKIP"]),
    ("score", ["mixture", "svm", "--configfile"]),
])
def test_each_subcommand_help_exits_zero_and_lists_its_options(command, words, capsys):
    out = help_text(command, capsys)
    assert out.startswith(f"usage: ali {command}")
    for word in words:
        assert word in out, word


def described(text: str, name: str) -> bool:
    """Whether a help text has a line that starts (after indentation) with ``name`` and a description."""
    return re.search(rf"^\s+{re.escape(name)}\s+\S", text, flags=re.M) is not None


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_train_and_evaluate_help_describe_every_experiment(command, capsys):
    out = help_text(command, capsys)
    assert len(EXPERIMENTS) == 4
    missing = [name for name in EXPERIMENTS if not described(out, name)]
    assert not missing, f"`ali {command} --help` says nothing of {missing}"


def test_report_help_names_every_report_with_its_help(capsys):
    out = help_text("report", capsys)
    flat = " ".join(out.split())
    reports = all_reports()
    assert reports
    for name, report in reports.items():
        assert described(out, name), name
        assert f"{name} {' '.join(report.help.split())}" in flat, name  # the registry's one-line help beside it
        assert callable(report.run), name
    for exp in EXPERIMENTS.values():  # every experiment's reports, each naming a method it has
        assert set(exp.reports) <= set(reports)
        assert all(callable(exp.report(name)) for name in exp.reports)
    choices = re.search(r"\{([\w,-]+)\}", out).group(1).split(",")
    assert sorted(choices) == sorted(reports)


def test_plan_experiment_choices_are_the_registry(capsys):
    out = help_text("plan", capsys)
    assert re.search(r"--experiment \{([\w,]+)\}", out).group(1).split(",") == sorted(EXPERIMENTS)


def _summaries() -> dict[str, str]:
    """Each subcommand's one-line summary, as `ali --help` lists it."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a.help for a in sub._choices_actions}


def test_top_level_help_gives_each_subcommand_a_summary():
    summaries = _summaries()
    assert set(summaries) == set(SUBCOMMANDS)
    assert all(summaries.values())


def test_each_subcommand_help_describes_what_it_does(capsys):
    missing = []
    for command, summary in _summaries().items():
        with pytest.raises(SystemExit):
            main([command, "--help"])
        if summary not in " ".join(capsys.readouterr().out.split()):
            missing.append(command)
    assert not missing, f"no description in --help of: {missing}"


def test_no_command_is_an_error():
    out = ali()
    assert out.returncode != 0
    assert "usage" in out.stderr


def test_plan_lists_every_run_of_the_smoke_preset():
    out = ali("plan", "--configfile", str(SMOKE))
    assert out.returncode == 0, out.stderr
    cfg = load_config(SMOKE)
    mixture_specs = experiment("mixture").plan(cfg)
    # random and fixed: 2 runs x {ali, gan} + inverse, posthoc, vae; pacgan: 2 runs x {ali, gan}, no baselines
    assert len(mixture_specs) == 7 + 7 + 4
    image_specs = experiment("images").plan(cfg)
    assert list(image_specs) == ["digits/ali/seed0", "digits/gan/seed0", "digits/vae/seed0"]
    semisup_specs = experiment("semisup").plan(cfg)
    assert sorted(semisup_specs) == sorted(f"digits/{m}/labels{n}/seed0" for m in ("ali_kplus1", "gan_fm")
                                           for n in (50, 100))
    svm_specs = experiment("svm").plan(cfg)
    assert list(svm_specs) == [f"svm/digits/{s}/seed0" for s in ("ali", "vae", "gan", "raw")]
    specs = plan_all(cfg)
    assert specs == {**mixture_specs, **image_specs, **semisup_specs, **svm_specs}
    assert {s["experiment"] for s in specs.values()} == set(EXPERIMENTS)
    lines = out.stdout.splitlines()
    assert len(lines) == 1 + len(specs)
    listed = [line.split()[0] for line in lines[1:]]
    assert listed == list(specs)
    fixed = next(line for line in lines if line.startswith("fixed/ali/run0"))
    assert "(0.2, 0.999)" in fixed and "1200" in fixed  # PyTorch betas; 6 epochs x 200 steps
    pacgan = next(line for line in lines if line.startswith("pacgan/gan/run1"))
    assert "(0.2, 0.999)" in pacgan and "1600" in pacgan  # the protocol's own 8 epochs x 200 steps (smoke)

    as_json = ali("plan", "--configfile", str(SMOKE), "--json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == json.loads(json.dumps(specs))

    only = ali("plan", "--configfile", str(SMOKE), "--experiment", "svm")
    assert only.returncode == 0 and [line.split()[0] for line in only.stdout.splitlines()[1:]] == list(svm_specs)


def test_train_with_an_unknown_run_fails_with_a_message(tmp_path):
    out = ali("train", "--configfile", str(SMOKE), "--run", "fixed/ali/run99", "--out", str(tmp_path / "r"))
    assert out.returncode != 0
    assert "fixed/ali/run99" in out.stderr and "not in the plan" in out.stderr
    assert not (tmp_path / "r" / mx.RECORD).exists()


def test_train_without_spec_or_run_fails_with_a_message(tmp_path):
    out = ali("train", "--out", str(tmp_path / "r"))
    assert out.returncode != 0
    assert "--spec" in out.stderr


def test_bad_config_value_exits_2_naming_the_key(tmp_path):
    cfg = yaml.safe_load(SMOKE.read_text())
    cfg["mixture"]["train"]["epochs"] = -1
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    out = ali("plan", "--configfile", str(bad))
    assert out.returncode == 2
    assert "mixture.train.epochs" in out.stderr and "-1" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_config_file_exits_2(tmp_path):
    out = ali("plan", "--configfile", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2
    assert "nope.yaml" in out.stderr and "Traceback" not in out.stderr


def test_corrupt_checkpoint_exits_2_and_says_to_delete_it(tmp_path):
    spec = mx.plan(load_config(SMOKE))["fixed/gan/run0"]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").write_bytes(b"garbage")
    out = ali("train", "--spec", json.dumps(spec), "--out", str(run_dir), "--device", "cpu", "--no-progress")
    assert out.returncode == 2
    assert str(run_dir / "checkpoint.pt") in out.stderr and "delete" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("text,line", [
    ("mixture:\n  train:\n    epoch: 3\n", "config error: unknown key mixture.train.epoch; allowed here: "),
    ("semisup:\n  lr: 3e-4\n", "config error: semisup.lr = '3e-4': must be of type number (YAML reads 3e-4 as a "
                               "string: write 3.0e-4)"),
], ids=["typo", "yaml-string-number"])
def test_plan_and_train_check_the_workflow_schema_with_its_one_line(tmp_path, text, line):
    """A typo never plans or trains on a silent default: `ali` rejects what Snakemake's schema rejects,
    with the line the Snakefile prints first (tests/test_readme.py compares the two on one file)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    for argv in (["plan", "--configfile", str(bad)],
                 ["train", "--configfile", str(bad), "--run", "fixed/ali/run0", "--out", str(tmp_path / "r")]):
        out = ali(*argv)
        assert out.returncode == 2, out.stderr
        assert out.stderr.startswith(line) and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (tmp_path / "r").exists()
