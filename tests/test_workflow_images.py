"""The image part of the Snakemake workflow (workflow/rules/images.smk): dry runs of the paper and
smoke presets, with the local and SLURM profiles, and config values the workflow must refuse.

Snakemake runs in a fresh copy of the workflow files (conftest.make_workdir), so nothing under the
checkout's results/ or .snakemake/ is read or locked.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
import yaml
from conftest import PAPER, REPO, canonical, job_stats, jobs, output, slurm_dry_run_of, snakemake, train_specs

from ali.config import load_config
from ali.experiments import images as im

MODELS = ("ali", "gan", "vae")
PAPER_DATASETS = ("svhn", "cifar10")


def trained(text: str, results: str) -> Counter:
    """(dataset, model) -> images_train jobs, from their record.json outputs."""
    pattern = rf"{re.escape(results)}/images/(\w+)/(\w+)/seed(\d+)/record\.json"
    return Counter((d, m) for j in jobs(text, "images_train") for d, m, _ in re.findall(pattern, j["output"]))


# --------------------------------------------------------------------------------- paper preset
@pytest.fixture(scope="module")
def paper_dry_run(workdir) -> str:
    res = snakemake("-n", "-p", "--cores", "8", cwd=workdir)  # the default target: everything
    assert res.returncode == 0, output(res)[-3000:]
    return output(res)


def test_paper_dry_run_plans_every_image_job(paper_dry_run):
    stats = job_stats(paper_dry_run)
    assert stats["images_train"] == 12         # {svhn, cifar10} x {ali, gan, vae} x seed 0; svhn seeds 1, 2 (svm)
    assert stats["download_data"] == 2         # svhn, cifar10
    assert stats["images_samples"] == 6
    assert stats["images_inference_figures"] == 4  # ali and vae only: the GAN has no encoder
    assert trained(paper_dry_run, "results") == Counter({(d, m): 3 if d == "svhn" else 1  # svm.image_seeds
                                                         for d in PAPER_DATASETS for m in MODELS})
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


def test_paper_figure_jobs_report_their_own_run(paper_dry_run):
    """Each figure job is `ali report image-figures` on its own run, with the preset's figure settings."""
    settings = im.figure_settings(load_config(PAPER))
    figure_jobs = jobs(paper_dry_run, "images_samples") + jobs(paper_dry_run, "images_inference_figures")
    assert len(figure_jobs) == 10
    for j in figure_jobs:
        name = re.search(r"results/figures/(\w+?)_(ali|gan|vae)_seed(\d+)_", j["output"])
        run = f"results/images/{name[1]}/{name[2]}/seed{name[3]}"
        outputs = dict(re.findall(r"(samples|reconstructions|interpolations)=(\S+)", j["shell"]))
        assert sorted(outputs.values()) == sorted(j["output"].split(", ")), j["shell"]
        assert re.search(rf"\$ALI report image-figures --in run={re.escape(run)} --out ", j["shell"]), j["shell"]
        passed = re.search(r"--settings '(\{.*?\})'", j["shell"])
        assert passed and json.loads(passed[1]) == settings, j["shell"]


def test_paper_image_training_jobs_each_ask_for_one_gpu(paper_dry_run):
    train = jobs(paper_dry_run, "images_train")
    assert len(train) == 12
    assert all(j["resources"].get("gpu") == "1" for j in train), [j["resources"] for j in train]
    others = jobs(paper_dry_run, "images_samples") + jobs(paper_dry_run, "images_inference_figures")
    assert all(j["resources"].get("gpu", "0") == "0" for j in others)


def test_paper_dry_run_passes_the_planned_specs(paper_dry_run):
    specs = train_specs(paper_dry_run, "images")
    plan = im.plan(load_config(PAPER))
    assert len(specs) == 12
    assert sorted(specs, key=canonical) == sorted(plan.values(), key=canonical)


def test_dry_run_with_the_slurm_profile(workdir):
    text = slurm_dry_run_of(workdir)  # the default target: everything
    train = jobs(text, "images_train")
    assert len(train) == 12 and all(j["resources"]["gpu"] == "1" for j in train)
    stats = job_stats(text)
    gpu_rules = ("images_train", "svm_features", "svm_trials", "semisup_train", "semisup_evaluate")
    others = [r for r in stats if r not in gpu_rules + ("total", "all")]
    assert {"download_data", "images_samples", "images_inference_figures"} <= set(others)
    for rule in stats:
        if rule in ("total", "all"):
            continue
        found = jobs(text, rule)
        assert len(found) == stats[rule], rule
        # the jobs that ask for a GPU are placed on a GPU partition by the plugin (no rule names one), every
        # other job asks for none; each carries the account from $SBATCH_ACCOUNT
        want = "1" if rule in gpu_rules else "0"
        assert all(j["resources"].get("gpu", "0") == want for j in found), rule
        assert all("slurm_partition" not in j["resources"] for j in found), rule
        assert all(j["resources"]["slurm_account"] == "testaccount" for j in found), rule


def test_slurm_partitions_take_gpu_jobs_only_where_there_are_gpus():
    """The plugin's partition file: `cpu` has no GPU (a gpu=1 job cannot land there), `gpu` has some."""
    partitions = yaml.safe_load((REPO / "workflow" / "profiles" / "slurm" / "partitions.yaml").read_text())
    assert set(partitions["partitions"]) == {"cpu", "gpu"}
    assert partitions["partitions"]["cpu"]["max_gpu"] == 0 and partitions["partitions"]["gpu"]["max_gpu"] >= 1


def test_dry_run_with_the_local_profile(workdir):
    res = snakemake("-n", "--workflow-profile", "workflow/profiles/local", "images", cwd=workdir)
    text = output(res)
    assert res.returncode == 0, text[-3000:]
    assert job_stats(text)["images_train"] == 12  # with table1.csv's svhn seeds 1, 2
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
    specs = train_specs(smoke_dry_run, "images")
    assert len(specs) == 3 and all(s["preset"] == "smoke" and s["steps"] == 33 for s in specs)  # 3 epochs x 11 steps
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
