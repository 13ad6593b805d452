# Shared by all the .smk files: the preset paths, each experiment plan and settings, and helpers.
# The .smk files beside this one hold rules only, and each calls the package CLI in one of three shapes --
#   $ALI train --spec JSON --out DIR [--in NAME=PATH ...]            (one run)
#   $ALI evaluate --run-dir DIR --settings JSON --out FILE           (its metrics)
#   $ALI report NAME --in NAME=PATH ... --out NAME=PATH ... [--settings JSON]
import json
import os
import shlex
import sys
from pathlib import PurePosixPath

from snakemake_interface_executor_plugins.settings import DeploymentMethod

from ali.config import results_dir
from ali.cost import runtime_minutes
from ali.data.images import DATASETS
from ali.experiments.base import experiment, plan_jobs

RESULTS = results_dir(config)
PRESET = config["preset"]
DATA = config["data_dir"]
ENV = "../../environment.yml"  # every rule's software environment (snakemake --sdm conda)
# Every shell command gets $ALI: the package's CLI, after bash's strict mode (Snakemake's own default
# prefix). Under --sdm conda it is the job environment's python (environment.yml, which holds the
# dependencies only: Snakemake copies it into .snakemake/conda/, where a path relative to it would
# miss), with this checkout's package put first on PYTHONPATH; otherwise the interpreter that runs
# Snakemake, so no PATH set-up is needed.
USE_CONDA = DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
CONDA_PATH = f"export PYTHONPATH={shlex.quote(os.path.abspath(workflow.basedir))}; " if USE_CONDA else ""
shell.prefix(f"set -euo pipefail; {CONDA_PATH}ALI='{'python' if USE_CONDA else sys.executable} -m ali'; ")

MIXTURE, IMAGES, SVM_EXP, SEMISUP = (experiment(n) for n in ("mixture", "images", "svm", "semisup"))
MIX_PLAN, IMG_PLAN, SVM_PLAN, SSL_PLAN = (e.plan(config) for e in (MIXTURE, IMAGES, SVM_EXP, SEMISUP))
MIX, IMG, SVM, SSL, FIG = (f"{RESULTS}/{d}" for d in ("mixture", "images", "svm", "semisup", "figures"))
MIX_PROTOCOLS = list(config["mixture"]["protocols"])
SVM_SETTINGS = SVM_EXP.settings(config)
SVM_DIR = f"{SVM}/{SVM_SETTINGS['dataset']}"
NO_DOWNLOAD = ("digits",)  # ships with scikit-learn


def as_json(obj):
    """Compact JSON for a shell argument (quote it with {params.x:q})."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def gpus(device):
    """How many GPUs a job on ``device`` asks for (cpu: none; cuda or auto: one)."""
    return 0 if device == "cpu" else 1


def data_flag(w):
    """The verified-download flag of the dataset a job reads (none for the bundled stand-in)."""
    return [] if w.dataset in NO_DOWNLOAD else f"{DATA}/{w.dataset}.verified"


def in_args(name, paths):
    """``--in`` pairs for one input name."""
    return " ".join(f"{name}={p}" for p in ([paths] if isinstance(paths, str) else paths))


def run_dir(path):
    return os.path.dirname(path)


def group_jobs(exp, plan):
    """``exp``'s training jobs of several runs trained together ({job name: run keys}, the contract's
    ``Experiment.jobs``): each gets its own rule, as a job's outputs are its runs' records."""
    return {job: keys for job, keys in plan_jobs(exp, plan, config).items() if keys != [job]}


def plan_models(plan):
    """Every model a plan trains (built-in or plug-in), in plan order: the model wildcard's values."""
    return list(dict.fromkeys(spec["model"] for spec in plan.values()))


def per_run_models(exp, plan):
    """The models whose runs each train in a job of their own: the per-run training rule's wildcard."""
    alone = {plan[job]["model"] for job, keys in plan_jobs(exp, plan, config).items() if keys == [job]}
    return [m for m in dict.fromkeys([*exp.models, *plan_models(plan)]) if m in alone]


def group_rule_name(exp, job):
    """A group job's rule: ``pacgan/ali/group0`` of the mixture -> ``mixture_train_group_pacgan_ali_group0``."""
    return f"{exp.name}_train_group_{'_'.join(PurePosixPath(job).parts)}"


def upstream(exp, spec):
    """The files a run's training reads, by ``--in`` name (``Experiment.upstream``), under RESULTS."""
    return {name: f"{RESULTS}/{path}" for name, path in exp.upstream(spec).items()}


def upstream_args(exp, spec):
    """``--in NAME=PATH ...`` for a run's upstream files (empty when it has none)."""
    files = upstream(exp, spec)
    return ("--in " + " ".join(in_args(name, path) for name, path in files.items())) if files else ""


def execution_args(exp):
    """The config's execution choices for ``exp``'s runs (``Experiment.execution``: capture, layout) as
    train flags: they reach the run context, never a spec or its hash."""
    flags = []
    for name, value in exp.execution(config).items():
        flag = name.replace("_", "-")
        flags.append((f"--{flag}" if value else f"--no-{flag}") if isinstance(value, bool) else f"--{flag} {value}")
    return " ".join(flags)


# mixture
MIX_DEVICE = config["mixture"]["device"]
MIX_GROUPS = group_jobs(MIXTURE, MIX_PLAN)  # empty on CPU (mixture.group_size auto): every run its own job
MIX_SOLO_MODELS = per_run_models(MIXTURE, MIX_PLAN)  # the models the per-run rule trains
MIX_MODELS = plan_models(MIX_PLAN)  # ALI, GAN, the baselines and any plug-in (mixture.extra_models)
MIX_PLUGINS = MIXTURE.plugin_models(MIX_PLAN)


def mix_keys(protocol=None, models=None):
    return [k for k, s in MIX_PLAN.items()
            if (protocol is None or s["protocol"] == protocol) and (models is None or s["model"] in models)]


def mix_key(w):
    return f"{w.protocol}/{w.mixmodel}/run{w.run}"


def figure8_baselines(w):
    return [f"{MIX}/{k}/record.json" for k in mix_keys(w.protocol, MIXTURE.baselines)]


def figure8_plugins(w):
    """The plug-in models' metrics of one protocol: Figure 8 shows each one's best run."""
    return [f"{MIX}/{k}/metrics.json" for k in mix_keys(w.protocol, MIX_PLUGINS)]


MIXTURE_TARGETS = [f"{RESULTS}/mixture.csv", f"{RESULTS}/mixture_runs.csv", f"{RESULTS}/figure8.png"] + [
    f"{RESULTS}/figure8_{p}.png" for p in MIX_PROTOCOLS]


# images
IMG_DEVICE = config["images"]["device"]


def img_figures(key):
    s = IMG_PLAN[key]
    prefix = f"{FIG}/{s['dataset']}_{s['model']}_seed{s['seed']}"
    return [f"{prefix}_samples.png"] + (
        [] if s["model"] == "gan" else [f"{prefix}_reconstructions.png", f"{prefix}_interpolations.png"])


# every planned image run, and the figures of the images.seeds runs (the further seeds the L2-SVM benchmark
# trains, svm.image_seeds, draw none)
IMAGES_TARGETS = [f"{IMG}/{key}/record.json" for key in IMG_PLAN] + [
    f for key, s in IMG_PLAN.items() if s["seed"] in config["images"]["seeds"] for f in img_figures(key)]


# svm
def svm_image_run(w):
    return [] if w.source == "raw" else f"{IMG}/{SVM_SETTINGS['dataset']}/{w.source}/seed{w.seed}/record.json"


def svm_data_flag(w):
    return [] if SVM_SETTINGS["dataset"] in NO_DOWNLOAD else f"{DATA}/{SVM_SETTINGS['dataset']}.verified"


# semisup
SSL_DEVICE = config["semisup"]["device"]
SSL_T1 = config["semisup"]["table1"]


def ssl_runs(dataset=None, n_labels=None):
    return [f"{SSL}/{key}" for key, spec in SSL_PLAN.items()
            if (dataset is None or spec["dataset"] == dataset) and (n_labels is None or spec["n_labels"] == n_labels)]

