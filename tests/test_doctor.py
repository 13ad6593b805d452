"""The self-check (ali/doctor.py): `ali doctor --quick` on CPU trains through the CLI, prints its
PASS/FAIL/SKIP lines, skips the CUDA checks with a reason and writes the rates JSON; a failing check
makes the exit status non-zero."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch
from conftest import REPO

from ali import doctor


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("rates")
    res = subprocess.run([sys.executable, "-m", "ali", "doctor", "--quick", "--device", "cpu", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    return res, out


@pytest.mark.slow
def test_quick_self_check_passes_on_cpu_and_skips_cuda_with_a_reason(quick):
    res, _ = quick
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    checks = {m.group(2): m.group(1) for m in (re.match(r"^(PASS|FAIL|SKIP) ([^:]+):", l) for l in lines) if m}
    for name in ("mixture ALI group, simultaneous", "mixture GAN group, alternating", "mixture evaluate + best",
                 "mixture baselines (inverse, posthoc, vae)", "SVM features (raw pixels)"):
        assert checks.get(name) == "PASS", name
    cuda = [l for l in lines if l.startswith("SKIP CUDA")]
    assert len(cuda) == 5 and all(l.endswith("no CUDA device on this machine") for l in cuda)
    assert not [l for l in lines if l.startswith("FAIL")]
    assert re.search(r"^summary on cpu .*: 8 PASS, 0 FAIL, 10 SKIP; rates in ", res.stdout, re.M)


@pytest.mark.slow
def test_quick_self_check_writes_the_measured_rates_with_provenance(quick):
    _, out = quick
    (path,) = out.glob("*.json")
    doc = json.loads(path.read_text())
    assert path.name.startswith("cpu-") and doc["kind"] == "cpu" and doc["quick"] is True
    assert doc["torch"] == torch.__version__ and doc["code_version"] and doc["date"]
    mixture = {(r["model"], r["what"]) for r in doc["rates"] if r["experiment"] == "mixture"}
    assert ("ali", "tiny mixture group, alternating") in mixture and ("vae", "tiny mixture baseline") in mixture
    assert all(r["value"] > 0 and r["scale"] == "tiny" for r in doc["rates"])  # quick runs no benchmark


def test_a_failing_check_is_a_fail_line_and_a_non_zero_exit(tmp_path, capsys, monkeypatch):
    d = doctor.Doctor(tmp_path, "cpu", quick=True)

    def broken() -> str:
        raise doctor.Failed("captured and eager groups differ")

    d.run("a check", broken)
    d.run("another", lambda: "fine")
    d.run("a third", broken, skip="no CUDA device on this machine")
    assert [c.status for c in d.checks] == ["FAIL", "PASS", "SKIP"]
    assert "FAIL a check: captured and eager groups differ" in capsys.readouterr().out

    def every_path(self):
        self.run("the only check", broken)

    for step in ("mixture_paths", "image_paths", "cuda_paths", "benchmarks"):
        monkeypatch.setattr(doctor.Doctor, step, every_path if step == "mixture_paths" else lambda self: None)
    assert doctor.main("cpu", quick=True, out=tmp_path / "rates") == 1
    assert "0 PASS, 1 FAIL, 0 SKIP" in capsys.readouterr().out


def test_checks_that_would_start_after_the_budget_are_skipped(tmp_path):
    d = doctor.Doctor(tmp_path, "cpu", quick=True, deadline=0.0)  # time.monotonic() is past it
    d.run("late", lambda: "ran")
    assert (d.checks[0].status, d.checks[0].detail) == ("SKIP", "the time budget (--budget) is spent")


def test_max_difference_is_zero_only_for_bit_identical_weights(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d, w in ((a, torch.ones(3)), (b, torch.tensor([1.0, 1.0, 1.5]))):
        d.mkdir()
        torch.save({"w": w, "n": torch.tensor(2)}, d / "model.pt")
    assert doctor.max_difference([a], [a]) == 0.0
    assert doctor.max_difference([a], [b]) == 0.5


def test_a_record_short_of_its_steps_fails_the_check(tmp_path):
    (tmp_path / "record.json").write_text(json.dumps({"status": "ok", "steps_done": 19}))
    with pytest.raises(doctor.Failed, match="19 of 20 steps"):
        doctor.finished(tmp_path, {"steps": 20})
