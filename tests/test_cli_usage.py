"""Usage mistakes through the installed console scripts: one `error:` line, exit 2, no traceback.

Runs the venv's own `bin/promptkit` and `bin/trainer` (the typer / click versions pip installed),
so a typer release that moves its exception classes is caught here, not by a user.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _script(name: str) -> str:
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"console script {name} is not installed (pip install -e .)")
    return found


def _run(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_script(name), *args], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "COLUMNS": "200"})


def _one_error_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("tool, args, needles", [
    ("promptkit", ["generate", "--classes", "mafw", "--samples", "three"], ["--samples", "promptkit generate --help"]),
    ("promptkit", ["generate", "--classes", "mafw", "--no-such-option"], ["--no-such-option"]),
    ("promptkit", ["generate", "--classes"], ["--classes", "requires an argument"]),
    ("promptkit", ["genrate"], ["genrate"]),
    ("promptkit", ["show"], ["Missing argument"]),
    ("trainer", ["run", "--epochs", "2.5"], ["--epochs", "trainer run --help"]),
    ("trainer", ["run", "--bogus"], ["--bogus"]),
    ("trainer", ["eval", "x.pt", "--test-list"], ["--test-list", "requires an argument"]),
    ("trainer", ["trian"], ["trian"]),
])
def test_usage_mistake_is_one_line_exit_2(tool, args, needles):
    proc = _run(tool, *args)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    _one_error_line(proc, *needles)


@pytest.mark.parametrize("tool", ["promptkit", "trainer"])
def test_help_and_bare_command_show_help(tool):
    for args in (["--help"], []):
        proc = _run(tool, *args)
        assert proc.returncode == 0, proc.stderr
        assert "Usage" in proc.stdout and "Traceback" not in proc.stderr


def test_library_error_is_one_line_exit_1(tmp_path):
    proc = _run("promptkit", "show", "mafw/v99", "--store", str(tmp_path))
    assert proc.returncode == 1
    _one_error_line(proc, "v99")


def test_typer_pin_covers_the_installed_version():
    """pyproject pins the typer range tested here; the installed one must lie inside it."""
    from importlib.metadata import requires, version

    spec = next(r for r in requires("dferclip-toolkit") if r.replace(" ", "").startswith("typer"))
    assert "<" in spec, f"typer needs an upper bound tested against clirun: {spec}"
    major, minor = (int(x) for x in version("typer").split(".")[:2])
    upper = spec.split("<", 1)[1].strip().split(",")[0]
    u_major, u_minor = (int(x) for x in upper.split(".")[:2])
    assert (major, minor) < (u_major, u_minor), (version("typer"), spec)
