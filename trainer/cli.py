"""The `trainer` console script: a thin Typer app over the library.

Command groups live in `trainer/commands/` and add theirs to `app` through explicit `register`
calls: model commands (import-official, ...) and run commands (run, eval, predict, synth).
"""

from __future__ import annotations

import sys

import typer

from promptkit.clirun import run_app
from promptkit.errors import PromptkitError
from trainer.errors import TrainerError

app = typer.Typer(
    name="trainer",
    help="Train and evaluate DFER-CLIP (learned context + LLM descriptions + temporal model) on video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    import importlib

    for name in ("model_cmds", "run_cmds"):
        try:
            module = importlib.import_module(f"trainer.commands.{name}")
        except ModuleNotFoundError as exc:  # pragma: no cover - only while a group is absent
            if exc.name != f"trainer.commands.{name}":
                raise
            continue
        module.register(app)


def main(argv: list[str] | None = None) -> None:
    _register_commands()
    sys.exit(run_app(app, (TrainerError, PromptkitError), argv))
