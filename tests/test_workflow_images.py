"""The image part of the Snakemake workflow (workflow/rules/images.smk): dry runs of the paper and
smoke presets, with the local and SLURM profiles, and config values the workflow must refuse.

As in tests/test_workflow.py, Snakemake runs in a fresh copy of the workflow files (top-level files,
workflow/ and config/) so nothing under the checkout's results/ or .snakemake/ is read or locked.
The helpers are copied from there (not imported) so this file does not depend on its internals.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from ali.config import load_config
from ali.experiments import images as im

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_DIRS = ("workflow", "config")
MODELS = ("ali", "gan", "vae")
PAPER_DATASETS = ("svhn", "cifar10")


def make_workdir(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for item in REPO.iterdir():
        if item.is_file():
            shutil.copy2(item, dest / item.name)
    for name in WORKFLOW_DIRS:
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def snakemake(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """--configfile takes several values: callers put it before every other option and target."""
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def output(res: subprocess.CompletedProcess) -> str:
    return res.stdout + res.stderr


def job_stats(text: str) -> dict[str, int]:
    """The 'Job stats' table: {rule: count}, with 'total'."""
    table = text[text.index("Job stats:"):]
    stats = {}
    for line in table.splitlines()[3:]:
        m = re.fullmatch(r"\s*(\S+)\s+(\d+)\s*", line)
        if not m:
            break
        stats[m.group(1)] = int(m.group(2))
    return stats


def jobs(text: str, rule: str) -> list[dict]:
    """Every job of ``rule`` in a dry run: {'output': str, 'input': [str], 'resources': {name: value}}."""
    found = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        if not re.match(rf"(?:local)?rule {rule}:", block):
            continue
        out = re.search(r"^\s+output: (.*)$", block, flags=re.M)
        inp = re.search(r"^\s+input: (.*)$", block, flags=re.M)
        res = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        found.append({"output": out.group(1) if out else "", "input": inp.group(1).split(", ") if inp else [],
                      "resources": dict(kv.split("=", 1) for kv in res.group(1).split(", ")) if res else {}})
    return found


def trained(text: str, results: str) -> Counter:
    """(dataset, model) -> images_train jobs, from their record.json outputs."""
    pattern = rf"{re.escape(results)}/images/(\w+)/(\w+)/seed(\d+)/record\.json"
    return Counter((d, m) for j in jobs(text, "images_train") for d, m, _ in re.findall(pattern, j["output"]))


def image_specs(text: str) -> list[dict]:
    """The --spec JSON of every image training command the dry run prints (-p)."""
    specs = [json.loads(s) for s in re.findall(r"\$ALI train --spec '(\{.*?\})'", text)]
    return [s for s in specs if s.get("experiment") == "images"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return make_workdir(tmp_path_factory.mktemp("wf_images") / "repo")


# --------------------------------------------------------------------------------- paper preset
@pytest.fixture(scope="module")
def paper_dry_run(workdir) -> str:
    res = snakemake("-n", "-p", "--cores", "8", cwd=workdir)  # the default target: everything
    assert res.returncode == 0, output(res)[-3000:]
    return output(res)


def test_paper_dry_run_plans_every_image_job(paper_dry_run):
    stats = job_stats(paper_dry_run)
    assert stats["images_train"] == 6          # {svhn, cifar10} x {ali, gan, vae} x seed 0
    assert stats["download_data"] == 2         # svhn, cifar10
    assert stats["images_samples"] == 6
    assert stats["images_inference_figures"] == 4  # ali and vae only: the GAN has no encoder
    assert trained(paper_dry_run, "results") == Counter({(d, m): 1 for d in PAPER_DATASETS for m in MODELS})
    downloads = sorted(j["output"] for j in jobs(paper_dry_run, "download_data"))
    assert downloads == ["data/cifar10.verified", "data/svhn.verified"]
    inference = jobs(paper_dry_run, "images_inference_figures")
    models = sorted(re.search(r"results/figures/\w+?_(\w+)_seed0_reconstructions\.png", j["output"]).group(1)
                    for j in inference)
    assert models == ["ali", "ali", "vae", "vae"]
    # training and the held-out figures wait for their dataset's download; samples need no data
    for j in jobs(paper_dry_run, "images_train") + inference:
        dataset = re.search(r"results/(?:images/|figures/)(svhn|cifar10)", j["output"]).group(1)
        assert f"data/{dataset}.verified" in j["input"], j
    assert not any("verified" in f for j in jobs(paper_dry_run, "images_samples") for f in j["input"])
    samples = sorted(j["output"] for j in jobs(paper_dry_run, "images_samples"))
    assert samples == sorted(f"results/figures/{d}_{m}_seed0_samples.png" for d in PAPER_DATASETS for m in MODELS)


def test_paper_image_training_jobs_each_ask_for_one_gpu(paper_dry_run):
    train = jobs(paper_dry_run, "images_train")
    assert len(train) == 6
    assert all(j["resources"].get("gpu") == "1" for j in train), [j["resources"] for j in train]
    others = jobs(paper_dry_run, "images_samples") + jobs(paper_dry_run, "images_inference_figures")
    assert all(j["resources"].get("gpu", "0") == "0" for j in others)


def test_paper_dry_run_passes_the_planned_specs(paper_dry_run):
    specs = image_specs(paper_dry_run)
    plan = im.plan(load_config(REPO / "config" / "paper.yaml"))
    assert len(specs) == 6
    key = lambda spec: json.dumps(spec, sort_keys=True)  # noqa: E731
    assert sorted(specs, key=key) == sorted(plan.values(), key=key)


def test_dry_run_with_the_slurm_profile(workdir):
    res = snakemake("-n", "--workflow-profile", "workflow/profiles/slurm", cwd=workdir)
    text = output(res)
    assert res.returncode == 0, text[-3000:]
    train = jobs(text, "images_train")
    assert len(train) == 6
    assert all(j["resources"]["slurm_partition"] == "gpu" and j["resources"]["gpu"] == "1" for j in train)
    stats = job_stats(text)
    gpu_rules = ("images_train", "svm_features", "svm_trials", "semisup_train", "semisup_evaluate")
    others = [r for r in stats if r not in gpu_rules + ("total", "all")]
    assert {"download_data", "images_samples", "images_inference_figures"} <= set(others)
    for rule in stats:
        if rule in ("total", "all"):
            continue
        found = jobs(text, rule)
        assert len(found) == stats[rule], rule
        # the jobs that ask for a GPU go to the GPU partition, every other job to the CPU one
        want = "gpu" if rule in gpu_rules else "cpu"
        assert all(j["resources"]["slurm_partition"] == want for j in found), rule


def test_dry_run_with_the_local_profile(workdir):
    res = snakemake("-n", "--workflow-profile", "workflow/profiles/local", "images", cwd=workdir)
    text = output(res)
    assert res.returncode == 0, text[-3000:]
    assert job_stats(text)["images_train"] == 6
    assert all(j["resources"]["gpu"] == "1" for j in jobs(text, "images_train"))


# --------------------------------------------------------------------------------- smoke preset
@pytest.fixture(scope="module")
def smoke_dry_run(workdir) -> str:
    res = snakemake("-n", "-p", "--configfile", "config/smoke.yaml", "--cores", "8", "images", cwd=workdir)
    assert res.returncode == 0, output(res)[-3000:]
    return output(res)


def test_smoke_dry_run_trains_digits_on_cpu_without_downloads(smoke_dry_run):
    stats = job_stats(smoke_dry_run)
    assert stats["images_train"] == 3 and stats["images_samples"] == 3 and stats["images_inference_figures"] == 2
    assert "download_data" not in stats
    assert trained(smoke_dry_run, "results/smoke") == Counter({("digits", m): 1 for m in MODELS})
    assert all(j["resources"]["gpu"] == "0" for j in jobs(smoke_dry_run, "images_train"))
    specs = image_specs(smoke_dry_run)
    assert len(specs) == 3 and all(s["preset"] == "smoke" and s["steps"] == 66 for s in specs)
    assert re.findall(r"--device (\w+)", smoke_dry_run) and set(re.findall(r"--device (\w+)", smoke_dry_run)) == {"cpu"}


# ------------------------------------------------------------------------------ bad config values
@pytest.mark.parametrize("presets,override,named", [
    ((), {"images": {"device": "tpu"}}, ["device", "tpu"]),
    ((), {"images": {"devcie": "cpu"}}, ["'devcie'"]),
    ((), {"images": {"train": ["mnist"]}}, ["images.train", "mnist"]),
    (("config/smoke.yaml",), {"images": {"datasets": {"digits": {"arch": "svhn", "heldout_split": "test",
                                                                  "batch_size": 5000}}}},
     ["images.datasets.digits.batch_size"]),
], ids=["device", "unknown-key", "undefined-dataset", "batch-too-large"])
def test_bad_image_config_stops_snakemake_naming_the_key(workdir, tmp_path, presets, override, named):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(override))
    res = snakemake("-n", "--configfile", *presets, str(bad), "--cores", "8", "images", cwd=workdir)
    text = output(res)
    assert res.returncode != 0
    for word in named:
        assert word in text, text[-3000:]
    assert "Job stats" not in text
