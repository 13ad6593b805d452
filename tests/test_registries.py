"""The lists that name the same things agree: the config schema's enums, the package's registries and
the workflow's wildcard constraints.

A model, source, dataset, architecture or option added to one of them and not to the others fails a
test here, naming both sides: the schema would refuse a value the package runs (or accept one it
refuses), or a rule's wildcard would never match a planned run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import PAPER, SCHEMA, SMOKE, output

from ali.config import ConfigError, load_config
from ali.data.catalog import DATASETS
from ali.data.splits import PROTOCOLS
from ali.eval.features import ENCODER_SETS
from ali.experiments import images as im
from ali.experiments import mixture as mx
from ali.experiments import semisup, svm
from ali.experiments.base import EXPERIMENTS, all_reports, experiment
from ali.experiments.published import MANUAL_REPORTS
from ali.models.base import CAPTURE_MODES, PRECISIONS, UPDATES
from ali.nets import architectures
from ali.optim import CONVENTIONS

RULES = Path(__file__).resolve().parents[1] / "workflow" / "rules"


@pytest.fixture(scope="module")
def schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def node(schema: dict, path: str) -> dict:
    """The schema node at a dotted path of properties (``*``: a mapping's values), with $refs followed."""
    out = schema
    for part in path.split("."):
        out = out["additionalProperties"] if part == "*" else out["properties"][part]
        while "$ref" in out:
            out = schema["$defs"][out["$ref"].removeprefix("#/$defs/")]
    return out


def enum(schema: dict, path: str) -> list:
    """The values a schema node allows: its enum, its items' enum (a list) or its keys' (a mapping)."""
    n = node(schema, path)
    for key in ("items", "propertyNames"):
        if key in n:
            n = n[key]
    return n["enum"]


# ----------------------------------------------------------------------------- schema <-> package
EXPERIMENT_MODELS = [  # (schema path of the config's model list, the experiment whose models it lists)
    ("images.models", "images"),
    ("semisup.models", "semisup"),
    ("svm.sources", "svm"),
]


def test_the_registry_holds_the_four_experiments():
    assert sorted(EXPERIMENTS) == ["images", "mixture", "semisup", "svm"]
    assert all(experiment(name).name == name for name in EXPERIMENTS)


@pytest.mark.parametrize("path,name", EXPERIMENT_MODELS)
def test_schema_lists_every_model_of_its_experiment(schema, path, name):
    assert enum(schema, path) == list(experiment(name).models)


def test_experiment_models_are_the_modules_own_lists():
    assert experiment("images").models == im.MODELS
    assert experiment("semisup").models == semisup.MODELS
    assert experiment("svm").models == svm.SOURCES
    assert experiment("mixture").models == mx.BASE_MODELS + mx.BASELINES


def test_schema_lists_every_mixture_baseline_and_protocol_kind(schema):
    assert enum(schema, "mixture.baselines.models") == list(mx.BASELINES)
    assert enum(schema, "mixture.protocols.*.kind") == list(mx.PROTOCOL_KINDS)


OPTION_ENUMS = [  # (schema path, the package's tuple of the values it accepts)
    ("images.update", UPDATES),
    ("semisup.update", UPDATES),
    ("mixture.train.update", UPDATES),
    ("images.precision", PRECISIONS),
    ("semisup.precision", PRECISIONS),
    ("images.capture", CAPTURE_MODES),
    ("semisup.capture", CAPTURE_MODES),
    ("images.vae_likelihood", im.VAE_LIKELIHOODS),
    ("svm.solver", svm.SOLVERS),
    ("svm.features", ENCODER_SETS),
    ("mixture.baselines.adam.convention", CONVENTIONS),
    ("images.datasets.*.arch", tuple(architectures.ARCHITECTURES)),
    ("semisup.datasets.*.arch", tuple(architectures.ARCHITECTURES)),
    ("images.datasets", tuple(DATASETS)),
    ("svm.dataset", tuple(PROTOCOLS)),  # the datasets with an SVM pool / validation split
]


@pytest.mark.parametrize("path,known", OPTION_ENUMS, ids=[p for p, _ in OPTION_ENUMS])
def test_schema_enum_is_the_packages_list(schema, path, known):
    assert sorted(enum(schema, path)) == sorted(known)


def test_every_architecture_has_its_table_and_its_options():
    assert set(architectures.ARCHITECTURES) == set(architectures.OPTIONS)
    assert all(architectures.ARCHITECTURES[name].name == name for name in architectures.ARCHITECTURES)


def test_semisup_datasets_have_class_labels(schema):
    named = enum(schema, "semisup.datasets")
    assert named and all(DATASETS[d].n_classes > 0 for d in named), {d: DATASETS[d].n_classes for d in named}


def test_svm_protocol_datasets_are_known_datasets():
    assert set(PROTOCOLS) <= set(DATASETS)


# Values the schema refuses: the package refuses them too, naming the key (the CLI runs without Snakemake).
@pytest.mark.parametrize("dataset", sorted(set(DATASETS) - set(PROTOCOLS)))
def test_package_refuses_an_svm_dataset_the_schema_refuses(dataset):
    cfg = load_config(SMOKE)
    cfg["svm"].update(dataset=dataset, sources=["raw"])  # raw pixels: no image run needed
    with pytest.raises(ConfigError, match=re.escape("svm.dataset")):
        svm.settings(cfg)


def test_package_refuses_semisup_on_a_dataset_without_labels():
    cfg = load_config(SMOKE)
    cfg["semisup"]["train"] = ["celeba"]
    cfg["semisup"]["datasets"]["celeba"] = {"arch": "celeba", "labels": [100], "epochs": 1, "decay_epochs": 0,
                                            "test_split": "test"}
    with pytest.raises(ConfigError, match=r"semisup\."):
        semisup.plan(cfg)


# --------------------------------------------------------------------------- workflow <-> package
PROBE = """
import json
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.types import ResourceSettings

with SnakemakeApi() as api:
    workflow = api.workflow(ResourceSettings(cores=1), snakefile=Path("Snakefile"), workdir=Path("."))._workflow
    rules = {r.name: {"constraints": dict(r.wildcard_constraints), "wildcards": sorted(r.wildcard_names)}
             for r in workflow.rules}
    print(json.dumps({"global": dict(workflow.wildcard_constraints), "rules": rules}, default=str))
"""


@pytest.fixture(scope="module")
def wildcards(workdir) -> dict:
    """The workflow's wildcard constraints as Snakemake holds them after parsing the paper preset."""
    res = subprocess.run([sys.executable, "-c", PROBE], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, output(res)[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def alternatives(pattern: str) -> list[str]:
    """The names a constraint of the form ``a|b|c`` matches."""
    assert re.fullmatch(r"[\w|]+", pattern), pattern
    return pattern.split("|")


def image_models_with_an_encoder() -> list[str]:
    plan = im.plan(load_config(SMOKE))
    return [m for m in im.MODELS if im.build(plan[f"digits/{m}/seed0"]).has_encoder]


def test_wildcards_name_exactly_the_registries(wildcards):
    constraints = wildcards["global"]
    assert alternatives(constraints["imgmodel"]) == list(experiment("images").models)
    assert alternatives(constraints["encmodel"]) == image_models_with_an_encoder()
    assert alternatives(constraints["source"]) == list(experiment("svm").models)
    assert alternatives(constraints["sslmodel"]) == list(experiment("semisup").models)
    assert alternatives(constraints["mixmodel"]) == list(experiment("mixture").models)
    assert sorted(alternatives(constraints["dataset"])) == sorted(DATASETS)
    assert alternatives(constraints["protocol"]) == list(load_config(PAPER)["mixture"]["protocols"])
    for numeric in ("seed", "nlabels", "run"):
        assert constraints[numeric] == r"\d+", numeric


def test_on_cpu_the_per_run_rule_trains_every_mixture_model(wildcards):
    # the paper preset trains the mixture on CPU (group_size auto: one run per job)
    assert alternatives(wildcards["rules"]["mixture_train"]["constraints"]["mixmodel"]) == list(mx.Mixture.models)


def test_every_wildcard_of_every_rule_is_constrained(wildcards):
    constrained = set(wildcards["global"])
    loose = {name: [w for w in r["wildcards"] if w not in constrained | set(r["constraints"])]
             for name, r in wildcards["rules"].items()}
    assert not {name: ws for name, ws in loose.items() if ws}


def test_every_report_is_made_by_a_rule_and_every_rule_calls_a_known_report():
    called = set()
    for smk in RULES.glob("*.smk"):
        called |= set(re.findall(r"\"\$ALI report ([\w-]+)", smk.read_text()))  # in shell strings, not comments
    assert called == set(all_reports()) - MANUAL_REPORTS  # publish writes results/published/: never a rule
