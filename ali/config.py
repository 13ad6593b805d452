"""Config loading and checking shared by the CLI and the workflow.

The workflow validates the whole config against ``workflow/schemas/config.schema.yaml``, and so does
:func:`load_config` (what ``ali plan``, ``train``, ``evaluate`` and ``report`` read with
``--configfile``), with the same one-line message: a typo never trains on a silent default. The
package checks each value it uses again. Every error names the offending key and says what would be
accepted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PRESET_DIR = Path(__file__).resolve().parent.parent / "config"
SCHEMA = PRESET_DIR.parent / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key."""


def _read(path: Path) -> dict:
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist (presets live in {PRESET_DIR})")
    try:
        with open(path) as f:
            cfg = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as err:  # PyYAML's own report (several lines) stays in __cause__
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML ({getattr(err, 'problem', None) or type(err).__name__}"
                          f"{where}); fix that line, or start again from a preset in {PRESET_DIR}") from err
    if not isinstance(cfg, dict):
        raise ConfigError(f"config file {path} must hold a mapping at top level")
    return cfg


def deep_update(base: dict, override: Mapping) -> dict:
    """Merge ``override`` into ``base`` recursively, as Snakemake merges --configfile onto configfile:."""
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def load_config(path: str | Path) -> dict:
    """A preset as the workflow sees it: the paper preset, with ``path`` merged on top."""
    path = Path(path)
    paper = PRESET_DIR / "paper.yaml"
    base = _read(paper) if paper.exists() else {}
    cfg = deep_update(base, _read(path))
    check_schema(cfg)
    return cfg


def check_schema(cfg: Mapping) -> None:
    """The workflow's schema check, raising ConfigError with the line the Snakefile prints first."""
    from jsonschema import Draft202012Validator

    from ali.config_errors import one_line

    if not SCHEMA.exists():
        raise ConfigError(f"config schema {SCHEMA} is missing: run from a full checkout of the repository")
    error = next(Draft202012Validator(yaml.safe_load(SCHEMA.read_text())).iter_errors(cfg), None)
    if error is not None:  # the first error, as Snakemake's validate() raises it
        raise ConfigError(one_line(error))


def results_dir(cfg: Mapping) -> str:
    """The paper preset writes under results/; every other preset under results/<preset>/."""
    preset = get(cfg, "preset", str)
    return "results" if preset == "paper" else f"results/{preset}"


def get(cfg: Mapping, key: str, kind: type | tuple[type, ...], *, low: float | None = None,
        high: float | None = None, choices: tuple | None = None, positive: bool = False,
        default: Any = ...) -> Any:
    """Value at dotted ``key`` with its type and range checked; ConfigError names the key."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            if default is not ...:
                return default
            raise ConfigError(f"config key {key!r} is missing")
        node = node[part]
    value = node
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = "/".join(k.__name__ for k in kinds)
        raise ConfigError(f"config key {key!r} must be {names}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key {key!r} must be finite, got {value!r}")
    if choices is not None and value not in choices:
        raise ConfigError(f"config key {key!r} must be one of {list(choices)}, got {value!r}")
    if positive and not value > 0:
        raise ConfigError(f"config key {key!r} must be > 0, got {value!r}")
    if low is not None and value < low:
        raise ConfigError(f"config key {key!r} must be >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"config key {key!r} must be <= {high}, got {value!r}")
    return value
