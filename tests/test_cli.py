"""The command line as the workflow and a user call it: `python -m ali ...` in a subprocess."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ali.cli import build_parser, main
from ali.config import load_config
from ali.experiments import images
from ali.experiments import mixture as mx
from ali.experiments import semisup

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "config" / "smoke.yaml"
SUBCOMMANDS = ("plan", "train", "evaluate", "best", "mixture-report", "figure8", "download", "image-figures",
               "svm-features", "svm-trials", "table1", "semisup-evaluate", "semisup-report")


def ali(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ali", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_top_level_help_describes_the_suite_and_lists_every_command():
    out = ali("--help")
    assert out.returncode == 0, out.stderr
    assert "Adversarially Learned Inference" in out.stdout
    for command in SUBCOMMANDS:
        assert command in out.stdout


@pytest.mark.parametrize("command,words", [
    ("plan", ["--configfile", "--json"]),
    ("train", ["--spec", "--out", "--device", "--checkpoint-every"]),
    ("evaluate", ["--run-dir", "--out", "--eval"]),
    ("best", ["--metrics", "--out"]),
    ("mixture-report", ["--run-dirs", "--out-runs", "--out-table"]),
    ("figure8", ["--best", "--baselines", "--out"]),
])
def test_each_subcommand_help_exits_zero_and_lists_its_options(command, words, capsys):
    # In-process (the same parser `python -m ali` builds): a subprocess per command costs a torch import.
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: ali {command}")
    for word in words:
        assert word in out, word


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
    mixture_specs = mx.plan(load_config(SMOKE))
    assert len(mixture_specs) == 14  # 2 protocols x (2 runs x {ali, gan} + inverse, posthoc, vae)
    image_specs = images.plan(load_config(SMOKE))
    assert list(image_specs) == ["digits/ali/seed0", "digits/gan/seed0", "digits/vae/seed0"]
    semisup_specs = semisup.plan(load_config(SMOKE))
    assert sorted(semisup_specs) == sorted(f"digits/{m}/labels{n}/seed0" for m in ("ali_kplus1", "gan_fm")
                                           for n in (50, 100))
    specs = {**mixture_specs, **image_specs, **semisup_specs}
    lines = out.stdout.splitlines()
    assert len(lines) == 1 + len(specs)
    listed = [line.split()[0] for line in lines[1:]]
    assert listed == list(specs)
    fixed = next(line for line in lines if line.startswith("fixed/ali/run0"))
    assert "(0.2, 0.999)" in fixed and "1200" in fixed  # PyTorch betas; 6 epochs x 200 steps

    as_json = ali("plan", "--configfile", str(SMOKE), "--json")
    assert as_json.returncode == 0
    assert set(json.loads(as_json.stdout)) == set(specs)


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
