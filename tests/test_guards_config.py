"""A bad ``mixture.eval.hq_stds`` is refused with a message that names the key and the value.

tests/test_workflow.py checks this through a Snakemake dry run with ``key in text and str(value) in
text``, and "0" appears in any output. Here both layers are checked for the words that matter: the
schema (what Snakemake runs first) names the path and the bound, the package names the dotted key
and the value it got.
"""

from __future__ import annotations

import re

import pytest
from conftest import PAPER, SCHEMA

from ali.config import ConfigError, load_config
from ali.experiments import mixture as mx



@pytest.fixture
def cfg() -> dict:
    return load_config(PAPER)


@pytest.mark.parametrize("value", [0, -1.5])
def test_package_names_the_key_and_the_value(cfg, value):
    cfg["mixture"]["eval"]["hq_stds"] = value
    with pytest.raises(ConfigError) as info:
        mx.eval_settings(cfg)
    assert re.fullmatch(rf"config key 'mixture\.eval\.hq_stds' must be > 0, got {float(value)!r}", str(info.value))


@pytest.mark.parametrize("value", [0, -1.5])
def test_schema_names_the_path_and_the_bound(cfg, value):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    cfg["mixture"]["eval"]["hq_stds"] = value
    with pytest.raises(WorkflowError) as info:
        validate(cfg, str(SCHEMA))
    text = str(info.value)
    assert f"{value} is less than or equal to the minimum of 0" in text
    assert "On instance['mixture']['eval']['hq_stds']" in text


def test_the_preset_value_passes_both(cfg):
    from snakemake.utils import validate

    validate(cfg, str(SCHEMA))
    assert mx.eval_settings(cfg)["hq_stds"] == 3.0
