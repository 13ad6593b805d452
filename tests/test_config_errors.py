"""One-line config errors: the key, the bad value and what is allowed, on the workflow's own schema."""

from __future__ import annotations

import copy

import conftest
import yaml
from jsonschema import Draft202012Validator, ValidationError

from ali.config_errors import dotted, explain, one_line

SCHEMA = yaml.safe_load(conftest.SCHEMA.read_text())
PAPER = yaml.safe_load(conftest.PAPER.read_text())


def first_error(edit) -> ValidationError:
    cfg = copy.deepcopy(PAPER)
    edit(cfg)
    errors = list(Draft202012Validator(SCHEMA).iter_errors(cfg))
    assert len(errors) == 1, [e.message for e in errors]
    return errors[0]


def test_the_paper_config_is_valid():
    assert list(Draft202012Validator(SCHEMA).iter_errors(PAPER)) == []


def test_enum():
    error = first_error(lambda c: c["mixture"]["train"].update(update="sideways"))
    assert one_line(error) == ("config error: mixture.train.update = 'sideways': must be one of "
                               "'simultaneous', 'alternating'")


def test_type():
    error = first_error(lambda c: c["mixture"]["data"].update(seed="abc"))
    assert one_line(error) == "config error: mixture.data.seed = 'abc': must be of type integer"


def test_minimum_through_a_ref():
    error = first_error(lambda c: c["mixture"]["train"].update(epochs=-1))
    assert one_line(error) == "config error: mixture.train.epochs = -1: must be a number >= 1"


def test_additional_property_names_the_typo_and_the_keys_allowed():
    error = first_error(lambda c: c["mixture"]["train"].update(epoch=3))
    line = one_line(error)
    assert line.startswith("config error: unknown key mixture.train.epoch; allowed here: ")
    assert "epochs" in line.split("allowed here: ")[1].split(", ")


def test_missing_key():
    error = first_error(lambda c: c["mixture"].pop("device"))
    assert one_line(error) == "config error: missing key mixture.device"


def test_list_index_in_the_path():
    assert dotted(["semisup", "seeds", 0]) == "semisup.seeds[0]"
    assert dotted([]) == "(top level)"


def test_explain_finds_the_error_inside_a_wrapping_exception():
    error = first_error(lambda c: c["mixture"]["train"].update(update="sideways"))
    wrapped = RuntimeError("Error validating config file.", error)   # as Snakemake's WorkflowError does
    assert explain(wrapped) == one_line(error)
    try:
        try:
            raise error
        except ValidationError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert explain(outer) == one_line(error)
    assert explain(RuntimeError("something else")) is None


def test_exclusive_bounds_say_strictly():
    error = first_error(lambda c: c["mixture"]["eval"].update(hq_stds=0))
    assert one_line(error) == "config error: mixture.eval.hq_stds = 0: must be a number > 0"
    error = first_error(lambda c: c["semisup"].update(beta1=1.5))
    assert one_line(error) == "config error: semisup.beta1 = 1.5: must be a number < 1"


def test_a_number_yaml_reads_as_a_string_gets_a_hint():
    """PyYAML (YAML 1.1) reads ``3e-4`` as a string; the line says how to write it as a number."""
    error = first_error(lambda c: c["semisup"].update(yaml.safe_load("lr: 3e-4")))
    assert one_line(error) == ("config error: semisup.lr = '3e-4': must be of type number "
                               "(YAML reads 3e-4 as a string: write 3.0e-4)")
    error = first_error(lambda c: c["semisup"].update(lr="0.5"))
    assert one_line(error).endswith("must be of type number (a quoted string: write 0.5 without quotes)")
    error = first_error(lambda c: c["mixture"]["data"].update(seed="abc"))  # not a number: no hint
    assert "(" not in one_line(error)
