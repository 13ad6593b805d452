"""Every command in the README's ```bash blocks works as printed.

Each line is run the cheap way, in a fresh copy of the workflow (conftest.make_workdir): a `snakemake`
line as a dry run (-n added); a `make` target through the snakemake lines `make -n` prints; an `ali`
line as it is (`plan` and `--help` cost a second). The few that cannot run in a test are in ALLOWED,
each with the reason; a line that is neither run nor allowed fails.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, output, snakemake

README = REPO / "README.md"
# first words of a command -> why a test does not run it
ALLOWED = {
    ("source",): "shell set-up; the tests call the virtual environment's interpreter directly",
    ("make", "test"): "runs this very test suite",
    ("ali", "download"): "downloads from the internet",
    ("pip", "install"): "installs from the internet",
    ("make", "gpu-check"): "the full self-check, minutes long; tests/test_doctor.py runs its quick form",
    ("python3", "-m", "ali", "doctor"): "the full self-check, minutes long; tests/test_doctor.py runs its quick form",
    ("ali", "doctor"): "tests/test_doctor.py runs `ali doctor --quick --device cpu` and checks every line it prints",
    ("ali", "score"): "needs the user's own sample and feature files; tests/test_score.py runs it on real ones",
}


def bash_commands(text: str) -> list[str]:
    """Each command line of the ```bash blocks, without its trailing comment."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():  # a line ending in a backslash goes on
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


COMMANDS = bash_commands(README.read_text())


def split_env(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """Leading ``NAME=value`` words (the shell's per-command environment) and the command after them."""
    env = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


def allowed(words: list[str]) -> str | None:
    return next((why for start, why in ALLOWED.items() if tuple(words[:len(start)]) == start), None)


def dry_run_ok(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    args = args if "-n" in args or "--dry-run" in args else [*args, "-n"]
    res = snakemake(*args, cwd=cwd, env=env)
    assert res.returncode == 0, f"snakemake {shlex.join(args)}:\n{output(res)[-3000:]}"
    assert "Job stats" in output(res) or "Nothing to be done" in output(res), output(res)[-3000:]


def make_snakemake_lines(target: str, cwd: Path) -> list[list[str]]:
    """The arguments of every `python -m snakemake` line that `make -n TARGET` prints."""
    res = subprocess.run(["make", "-n", target], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = [shlex.split(line) for line in res.stdout.splitlines() if " -m snakemake" in line]
    return [words[words.index("snakemake") + 1:] for words in lines]


def test_the_readme_has_commands_and_every_allowance_is_used():
    assert len(COMMANDS) >= 10 and any(c.startswith("snakemake ") for c in COMMANDS)
    unused = [start for start in ALLOWED if not any(allowed(split_env(shlex.split(c))[1]) == ALLOWED[start]
                                                    for c in COMMANDS)]
    assert not unused, f"allowances for commands the README no longer has: {unused}"


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_works_as_printed(command, workdir):
    env, words = split_env(shlex.split(command))
    if allowed(words):
        pytest.skip(allowed(words))
    if words[0] == "snakemake":
        dry_run_ok(words[1:], workdir, env)
    elif words[0] == "make":
        lines = make_snakemake_lines(words[1], workdir)
        assert lines, f"`make -n {words[1]}` runs no snakemake"
        for args in lines:
            dry_run_ok(args, workdir, env)
    elif words[0] == "ali":
        res = subprocess.run([sys.executable, "-m", "ali", *words[1:]], cwd=workdir, capture_output=True, text=True,
                             timeout=120)
        assert res.returncode == 0, res.stderr[-3000:]
        assert res.stdout.strip()
    else:
        pytest.fail(f"README command {command!r} is neither run by this test nor in ALLOWED (with a reason)")
