"""mixture.group_size in the DAG: on a GPU a protocol's ALI (or GAN) runs are one training job; on CPU
every run is its own job. Snakemake still sees one record.json per run, so tables are unchanged."""

from __future__ import annotations

import json
import re

from conftest import PAPER, dry_run, job_stats, jobs

from ali.config import load_config
from ali.experiments import mixture as mx


def config_file(tmp_path, text: str):
    path = tmp_path / "extra.yaml"
    path.write_text(text)
    return str(path)


def test_on_a_gpu_one_training_job_per_protocol_and_model(workdir, tmp_path):
    text = dry_run(workdir, "--cores", "8", "--configfile", "config/paper.yaml",
                   config_file(tmp_path, "mixture:\n  device: cuda\n"), "--", "results/mixture.csv")
    stats = job_stats(text)
    groups = {rule: n for rule, n in stats.items() if rule.startswith("mixture_train_group_")}
    protocols = list(load_config(workdir / "config" / "paper.yaml")["mixture"]["protocols"])
    assert set(groups) == {f"mixture_train_group_{p}_{m}_group0" for p in protocols for m in mx.BASE_MODELS}
    assert all(n == 1 for n in groups.values())
    assert stats["mixture_train"] == len(protocols) * len(mx.BASELINES)  # the baselines still train alone
    (job,) = jobs(text, "mixture_train_group_pacgan_ali_group0")
    assert job["resources"]["gpu"] == "1"
    specs = json.loads(re.search(r"--spec '(\[.*?\])'", job["shell"]).group(1))
    assert [s["run"] for s in specs] == list(range(10)) and len({s["data"]["seed"] for s in specs}) == 10
    assert len(re.search(r"--out (.*?) --device", job["shell"]).group(1).split()) == 10
    assert "--capture auto" in job["shell"] and '"capture"' not in job["shell"]  # mixture.capture: the context's


def test_on_cpu_every_run_is_its_own_job(workdir):
    stats = job_stats(dry_run(workdir, "--cores", "8", "results/mixture.csv"))
    assert not any(rule.startswith("mixture_train_group_") for rule in stats)
    plan = mx.plan(load_config(workdir / "config" / "paper.yaml"))
    assert stats["mixture_train"] == len(plan)


def test_groups_of_a_given_size_split_each_protocols_runs():
    plan = mx.plan(load_config(PAPER))
    groups = mx.run_groups(plan, 4)
    assert groups["random/ali/group0"] == [f"random/ali/run{i}" for i in range(4)]
    assert groups["random/ali/group2"] == ["random/ali/run8", "random/ali/run9"]
    assert mx.run_groups(plan, 1) == {}
    assert sorted(k for g in groups.values() for k in g) == sorted(k for k, s in plan.items()
                                                                   if s["model"] in mx.BASE_MODELS)
