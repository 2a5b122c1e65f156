"""promptkit is the bottom layer: it never imports trainer, and works without trainer's commands."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import fake_llm  # noqa: F401  (puts the real promptkit first on sys.path)
import typer
from cli_runner import run_cli

import promptkit
from promptkit import cli

PACKAGE = Path(promptkit.__file__).resolve().parent


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_promptkit_module_imports_trainer_anywhere():
    offenders = [str(p.relative_to(PACKAGE)) for p in sorted(PACKAGE.glob("*.py")) if "trainer" in _imported_roots(p)]
    assert offenders == []


def test_importing_every_promptkit_module_leaves_trainer_unloaded():
    names = [f"promptkit.{p.stem}" for p in sorted(PACKAGE.glob("*.py")) if p.stem != "__main__"]
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n    importlib.import_module(name)\n"
            "loaded = sorted(m for m in sys.modules if m == 'trainer' or m.startswith('trainer.'))\n"
            "print(loaded)\nsys.exit(1 if loaded else 0)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def _command_names(app: typer.Typer) -> set[str]:
    return {c.name or c.callback.__name__ for c in app.registered_commands}


def test_the_evaluation_commands_come_from_the_entry_point():
    assert {"compare", "embed", "interpret"} <= _command_names(cli.build_app())
    entries = {e.value for e in metadata.entry_points(group=cli.COMMANDS_GROUP)}
    assert "trainer.commands.eval_cmds:register" in entries


def test_without_trainer_the_other_commands_still_work(monkeypatch):
    missing = metadata.EntryPoint("evaluate", "no_such_package_xyz.commands:register", cli.COMMANDS_GROUP)
    monkeypatch.setattr(cli.metadata, "entry_points", lambda group: [missing])
    names = _command_names(cli.build_app())
    assert {"generate", "list", "show", "tokens"} <= names
    assert not names & {"compare", "embed", "interpret"}
    result = run_cli("list")
    assert result.code == 0, result.err
    assert "dfew" in result.out
