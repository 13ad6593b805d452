"""Run specs under the experiment contract: each experiment's spec is a typed ``RunSpec``, the
execution choices (capture, layout, device, threads) stay out of specs and hashes and reach the run
through ``RunContext``, and ``Experiment.jobs`` says which runs share a training job."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import PAPER, SMOKE
from conftest import with_key as _set

from ali import cli
from ali.config import load_config
from ali.experiments.base import Experiment, RunContext, RunSpec, experiment, plan_all, plan_jobs
from ali.experiments import mixture as mx
from ali.provenance import config_hash

# The smoke preset's config hashes as main (5e3fa29) planned them, with the execution keys `capture`
# (mixture, images, semisup) and `channels_last` (images, semisup) taken out of each spec first; made with
#   PYTHONPATH=/work/main python -c "...config_hash({k: v for k, v in spec.items()
#                                        if k not in ('capture', 'channels_last')}) for spec in plan_all(smoke)"
# The svm specs never had either key. Their keys gained `/seed<s>` and their hashes changed when the SVM's
# source models went to several training seeds: the only difference from main's spec is the settings'
# `image_seed: 0` become `image_seeds: [0]` (checked by diffing both plans' JSON).
MAIN_SMOKE_HASHES = {
    "digits/ali/seed0": "b3a46b37d292", "digits/gan/seed0": "d0c134e0df6a", "digits/vae/seed0": "7b216eb3acce",
    "random/ali/run0": "1565beacb566", "random/gan/run0": "511da6a6e65e", "random/ali/run1": "e560d6e5d528",
    "random/gan/run1": "09e9cdcb7c5a", "random/inverse/run0": "d6235efbb0c1", "random/posthoc/run0": "8dfb654a93c8",
    "random/vae/run0": "66f99c61c1bf", "fixed/ali/run0": "fbcc4e2c3c88", "fixed/gan/run0": "114eb6fcce8d",
    "fixed/ali/run1": "91092b59bbe2", "fixed/gan/run1": "a998d356d1ef", "fixed/inverse/run0": "cbc6e0a766a8",
    "fixed/posthoc/run0": "070c6235b1a2", "fixed/vae/run0": "af4d93390581", "pacgan/ali/run0": "5e1ef8a9308e",
    "pacgan/gan/run0": "cbaf27aa3451", "pacgan/ali/run1": "8de715d4c3f9", "pacgan/gan/run1": "f47b6883a88f",
    "digits/ali_kplus1/labels50/seed0": "40d7f4523760", "digits/gan_fm/labels50/seed0": "5066e2a5505a",
    "digits/ali_kplus1/labels100/seed0": "c493c5a9225c", "digits/gan_fm/labels100/seed0": "fdc57b6b4944",
    "svm/digits/ali/seed0": "5eabf5d0caf8", "svm/digits/vae/seed0": "16daeb91b0e1",
    "svm/digits/gan/seed0": "59b02b9b3323", "svm/digits/raw/seed0": "e389bbd955a1",
}
EXECUTION_KEYS = {"capture", "channels_last", "device", "threads"}


@pytest.fixture(scope="module")
def smoke() -> dict:
    return load_config(SMOKE)


def test_smoke_specs_are_mains_less_the_execution_keys(smoke):
    # the smoke preset's budgets as main had them (the preset has since trained digits for 3 epochs, not 6,
    # and PacGAN's smoke protocol for 8, not 12, to keep `make smoke` short): the pins hold the spec code
    # to main's, not the preset's budgets
    smoke = copy.deepcopy(smoke)
    smoke["images"]["datasets"]["digits"]["epochs"] = 6
    smoke["mixture"]["protocols"]["pacgan"]["epochs"] = 12
    plan = plan_all(smoke)
    assert {key: config_hash(spec) for key, spec in plan.items()} == MAIN_SMOKE_HASHES
    assert list(plan) == list(MAIN_SMOKE_HASHES)  # and in main's order


@pytest.mark.parametrize("name", ["mixture", "images", "semisup", "svm"])
def test_every_planned_spec_is_its_experiments_typed_spec(smoke, name):
    exp = experiment(name)
    assert issubclass(exp.spec_type, RunSpec) and exp.spec_type is not RunSpec
    plan = exp.plan(smoke)
    assert plan
    for spec in plan.values():
        assert exp.spec_type(**spec).to_dict() == spec  # exactly the typed fields, nothing else
        assert not EXECUTION_KEYS & set(spec)


@pytest.mark.parametrize("name, key, values", [
    ("mixture", "mixture.capture", ("off", "on")),
    ("images", "images.capture", ("off", "on")),
    ("images", "images.channels_last", (False, True)),
    ("semisup", "semisup.capture", ("off", "on")),
    ("semisup", "semisup.channels_last", (False, True)),
])
def test_execution_choices_feed_the_context_and_never_a_hash(smoke, name, key, values):
    """Changing capture or layout changes no spec (so no checkpoint guard refuses the run) and reaches
    the run context through Experiment.execution."""
    exp = experiment(name)
    cfgs = [_set(smoke, key, v) for v in values]
    assert exp.plan(cfgs[0]) == exp.plan(cfgs[1])
    field = key.split(".")[-1]
    assert [exp.execution(cfg)[field] for cfg in cfgs] == list(values)


def test_the_cli_context_takes_execution_from_the_config_then_the_flags(smoke, tmp_path):
    images = experiment("images")

    def context(configfile, *flags):
        args = cli.build_parser().parse_args(["train", "--configfile", str(configfile), "--run", "digits/ali/seed0",
                                              "--out", str(tmp_path), *flags])
        return cli._context(args, images)

    ctx = context(SMOKE, "--threads", "2")
    assert (ctx.capture, ctx.channels_last, ctx.threads) == ("auto", False, 2)
    cfg_file = tmp_path / "cl.yaml"  # merged over paper.yaml by the CLI's loader
    cfg_file.write_text("images:\n  channels_last: true\n  capture: 'off'\n")
    assert (context(cfg_file).capture, context(cfg_file).channels_last) == ("off", True)
    ctx = context(cfg_file, "--capture", "on", "--no-channels-last")
    assert (ctx.capture, ctx.channels_last) == ("on", False)
    options = context(SMOKE, "--channels-last").step_options(images.plan(smoke)["digits/ali/seed0"])
    assert (options.capture, options.channels_last, options.precision) == ("auto", True, "fp32")


def test_jobs_default_to_one_run_each(smoke):
    for name in ("images", "semisup", "svm"):
        exp = experiment(name)
        plan = exp.plan(smoke)
        assert exp.jobs(plan, smoke) == {key: [key] for key in plan}


@pytest.mark.parametrize("device, size, n_groups", [("cpu", "auto", 0), ("cuda", "auto", 6), ("cpu", 1, 0),
                                                    ("cpu", 0, 6), ("cpu", 3, 6)])
def test_mixture_jobs_group_by_group_size(smoke, device, size, n_groups):
    cfg = _set(_set(smoke, "mixture.device", device), "mixture.group_size", size)
    exp = experiment("mixture")
    plan = exp.plan(cfg)
    jobs = plan_jobs(exp, plan, cfg)  # every run in exactly one job, or it raises
    groups = {job: keys for job, keys in jobs.items() if keys != [job]}
    assert len(groups) == n_groups
    assert all(plan[k]["model"] in mx.BASE_MODELS for keys in groups.values() for k in keys)
    if groups:
        assert groups["pacgan/ali/group0"] == ["pacgan/ali/run0", "pacgan/ali/run1"]
    alone = {plan[job]["model"] for job, keys in jobs.items() if keys == [job]}
    assert alone == (set(mx.BASELINES) if groups else set(mx.BASELINES) | set(mx.BASE_MODELS))


def test_changing_capture_resumes_the_old_checkpoint(tmp_path):
    """A run killed while trained with capture 'off' resumes under 'auto' (eager on CPU, the same
    numbers): the checkpoint's guard hashes the spec, which the capture mode no longer enters."""
    torch.set_num_threads(1)
    spec = copy.deepcopy(mx.plan(load_config(PAPER))["random/gan/run0"])
    spec["nets"].update(gen_hidden=16, disc_hidden=8)
    spec["data"].update(n_train=400, n_heldout=100)
    spec["steps"] = 8
    exp = experiment("mixture")
    loop = {"device": "cpu", "progress": False, "checkpoint_every": 4, "log_every": 4}
    with pytest.raises(KeyboardInterrupt):
        exp.train_run(spec, tmp_path / "a", RunContext(capture="off", stop_at=4, **loop))
    resumed = exp.train_run(spec, tmp_path / "a", RunContext(capture="auto", **loop))
    straight = exp.train_run(spec, tmp_path / "b", RunContext(capture="off", **loop))
    assert resumed["resumed_from_step"] == 4 and resumed["steps_done"] == 8
    assert resumed["final_losses"] == straight["final_losses"]


@pytest.mark.parametrize("jobs, named", [
    (lambda plan: {"all": list(plan), "again": [next(iter(plan))]}, "runs in two jobs ['digits/ali/seed0']"),
    (lambda plan: {"some": list(plan)[1:]}, "in none ['digits/ali/seed0']"),
    (lambda plan: {**{k: [k] for k in plan}, "x": ["nope"]}, "not planned ['nope']"),
    (lambda plan: {**{k: [k] for k in plan}, "x": []}, "empty jobs ['x']"),
])
def test_jobs_that_lose_or_repeat_a_run_are_refused(smoke, jobs, named):
    class Broken(Experiment):
        name = "broken"

        def jobs(self, plan, cfg):
            return jobs(plan)

    plan = experiment("images").plan(smoke)
    with pytest.raises(ValueError) as err:
        plan_jobs(Broken(), plan, smoke)
    assert named in str(err.value)
