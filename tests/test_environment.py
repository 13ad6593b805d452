"""environment.yml: the environment of conda users and of every rule under `snakemake --sdm conda`.

Snakemake copies the file into .snakemake/conda/ before it builds the environment, so a path in it
(`-e .`, `-r requirements.txt`) would resolve against that folder, not this checkout. It names
packages only; the rules reach this checkout's `ali` through PYTHONPATH (workflow/rules/common.smk).
"""

from __future__ import annotations

import re
import tomllib

import yaml
from conftest import REPO

ENV = yaml.safe_load((REPO / "environment.yml").read_text())
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def entries() -> list[str]:
    """Every package line of environment.yml, conda's and pip's."""
    found = []
    for dep in ENV["dependencies"]:
        found += dep["pip"] if isinstance(dep, dict) else [dep]
    return found


def name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")


def pin(requirement: str) -> str | None:
    m = re.search(r"==?([0-9][\w.]*)$", requirement.replace(" ", ""))
    return m.group(1) if m else None


def test_environment_names_no_path():
    paths = [e for e in entries() if re.match(r"(-e|--editable|-r|--requirement|-c|--constraint)(\s|=|$)|[./~]|file:",
                                              e) or "/" in e]
    assert not paths, f"environment.yml names paths, which Snakemake's copy cannot resolve: {paths}"
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+\s*([<>=!]=?[0-9][\w.*]*)?", e) for e in entries()), entries()


def test_environment_holds_every_dependency_of_the_package_with_the_same_pins():
    requirements = PYPROJECT["dependencies"] + [r for extra in ("workflow", "download")
                                                for r in PYPROJECT["optional-dependencies"][extra]]
    env = {name(e): e for e in entries()}
    missing = [r for r in requirements if name(r) not in env]
    assert not missing, f"environment.yml lacks {missing}"
    differ = [(r, env[name(r)]) for r in requirements if pin(r) and pin(r) != pin(env[name(r)])]
    assert not differ, differ
