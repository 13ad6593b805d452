"""The SLURM path, end to end: a tiny DAG through the real snakemake-executor-plugin-slurm and our
workflow/profiles/slurm profile, with stand-in sbatch, srun, sacct, squeue, sacctmgr, scontrol and
sinfo (tests/fake_slurm/) first on PATH. The stand-in sbatch runs each job at once and logs its
arguments; the test then checks what each job asked SLURM for, and that the numbers equal a local run
of the same DAG.

The DAG: the tiny preset's ALI run 0 of the random protocol, trained and evaluated. With
mixture.device: auto the training job asks for gpu=1 and, as on any GPU, trains the protocol's ALI
runs as one group (mixture.group_size auto; the tiny preset has one); on a machine without a GPU it
trains on the CPU, so the numbers can be compared. The evaluation is a CPU job. Both runs go at once,
to save time.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, TINY, make_workdir


FAKE_SLURM = REPO / "tests" / "fake_slurm"
RESULTS = "results/tiny"
RUN = f"{RESULTS}/mixture/random/ali/run0"
TARGET = f"{RUN}/metrics.json"
ACCOUNT = "testaccount"
VOLATILE = {"wall_time_s", "finished_at", "threads"}  # how the run went, not part of its numbers
TRAIN_RULE = "mixture_train_group_random_ali_group0"  # the protocol's ALI runs (common.smk: group_rule_name)

pytestmark = pytest.mark.slow


def start_snakemake(cwd: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "snakemake", TARGET, *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-6000:]


def gpu_config(dest: Path) -> Path:
    """The tiny preset with mixture.device: auto, so that training jobs ask for a GPU."""
    path = dest / "gpu.yaml"
    path.write_text(yaml.safe_dump({"mixture": {"device": "auto"}}))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """The same DAG once through the fake cluster and once locally."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="the SLURM path needs the [workflow] extras")
    tmp = tmp_path_factory.mktemp("slurm")
    state = tmp / "fake_slurm_state"
    state.mkdir()
    configs = [str(TINY), str(gpu_config(tmp))]
    slurm_repo, local_repo = make_workdir(tmp / "slurm" / "repo"), make_workdir(tmp / "local" / "repo")
    env = {**os.environ, "PATH": f"{FAKE_SLURM}{os.pathsep}{os.environ['PATH']}", "FAKE_SLURM_STATE": str(state),
           "FAKE_SLURM_ACCOUNT": ACCOUNT, "SBATCH_ACCOUNT": ACCOUNT}
    for name in ("SNAKEMAKE_SLURM_PARTITIONS", "SNAKEMAKE_PROFILE"):   # the user's own settings stay out
        env.pop(name, None)
    on_cluster = start_snakemake(slurm_repo, "--configfile", *configs, "--workflow-profile", "workflow/profiles/slurm",
                                 "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks",
                                 "1", "--slurm-keep-successful-logs", env=env)
    local = start_snakemake(local_repo, "--configfile", *configs, "--cores", "1")
    finish(on_cluster)
    finish(local)
    return {"slurm": slurm_repo, "local": local_repo, "state": state}


def submissions(state: Path) -> list[dict]:
    """Every sbatch call: its options as {flag: value} (flags without a value map to True)."""
    out = []
    for path in sorted((state / "jobs").glob("*.args")):
        args, opts, i = shlex.split(path.read_text()), {}, 0
        while i < len(args):
            flag = args[i]
            if "=" in flag and flag.startswith("--"):
                key, value = flag.split("=", 1)
                opts[key] = value
            elif i + 1 < len(args) and not args[i + 1].startswith("-"):
                opts[flag] = args[i + 1]
                i += 1
            else:
                opts[flag] = True
            i += 1
        opts["rule"] = opts["--comment"].split("_wildcards_")[0].removeprefix("rule_")
        out.append(opts)
    return out


def test_every_remote_job_was_submitted_and_completed(runs):
    jobs = submissions(runs["state"])
    assert sorted(j["rule"] for j in jobs) == ["mixture_evaluate", TRAIN_RULE]
    states = [p.read_text().strip().rsplit("|", 1)[1] for p in (runs["state"] / "jobs").glob("*.state")]
    assert states == ["COMPLETED"] * 2
    assert (runs["state"] / "sacct.calls").exists()              # the plugin polled the stand-in sacct
    assert (runs["state"] / "sacctmgr.calls").exists()           # and checked the account it was given


def test_gpu_jobs_ask_for_one_gpu_on_the_gpu_partition_with_time_and_memory(runs):
    train = [j for j in submissions(runs["state"]) if j["rule"] == TRAIN_RULE]
    assert len(train) == 1
    for job in train:
        assert job["--gpus"] == "1" and "--gres" not in job
        assert job["-p"] == "gpu"
        assert int(job["-t"]) > 0 and int(job["--mem"]) > 0
        assert job["-A"] == ACCOUNT
    # inside the allocation, the job step asked srun for the same GPU
    steps = (runs["state"] / "srun.calls").read_text().splitlines()
    assert sum("--gpus=1" in s for s in steps) == 1 and len(steps) == 2


def test_cpu_jobs_ask_for_no_gpu_and_go_to_the_cpu_partition(runs):
    evaluate = [j for j in submissions(runs["state"]) if j["rule"] == "mixture_evaluate"]
    assert len(evaluate) == 1
    for job in evaluate:
        assert "--gpus" not in job and "--gres" not in job
        assert job["-p"] == "cpu"
        assert int(job["-t"]) > 0 and int(job["--mem"]) > 0
        assert job["-A"] == ACCOUNT


def without_volatile(obj):
    if isinstance(obj, dict):
        return {k: without_volatile(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [without_volatile(v) for v in obj]
    return obj


@pytest.mark.parametrize("name", ["metrics.json", "record.json"])
def test_the_cluster_run_gives_the_numbers_of_a_local_run(runs, name):
    slurm = json.loads((runs["slurm"] / RUN / name).read_text())
    local = json.loads((runs["local"] / RUN / name).read_text())
    assert without_volatile(slurm) == without_volatile(local)
    if name == "metrics.json":
        assert slurm["modes"] == local["modes"] and slurm["recon_sqerr"] == local["recon_sqerr"]
    else:
        assert slurm["final_losses"] == local["final_losses"] and slurm["status"] == "ok"


def test_the_trained_weights_are_the_same(runs):
    slurm = torch.load(runs["slurm"] / RUN / "model.pt", weights_only=True)
    local = torch.load(runs["local"] / RUN / "model.pt", weights_only=True)
    assert slurm.keys() == local.keys()
    assert all(torch.equal(slurm[k], local[k]) for k in slurm)


def test_every_job_asks_for_the_preemption_signal_and_requeue(runs):
    """`ali train` checkpoints and exits 75 on SIGUSR1 (tests/test_faults.py); SLURM must send it with
    a grace period to the job steps (no `B:`), and requeue preempted jobs."""
    for job in submissions(runs["state"]):
        assert job["--signal"] == "USR1@180" and "--requeue" in job
