"""The `promptkit` console script: a thin Typer app over the library.

Commands live in small modules that each add theirs to `app` (explicit `register` calls, no
import side effects): descriptor sets (generate, list, show, diff, tokens, add, export, import)
and evaluation (compare, embed, interpret).
"""

from __future__ import annotations

import importlib
import sys

import typer

from promptkit.clirun import run_app
from promptkit.errors import PromptkitError

app = typer.Typer(
    name="promptkit",
    help="LLM-written facial-expression descriptors for DFER-CLIP: generate, version, fit, compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    from promptkit import cli_sets

    cli_sets.register(app)
    try:
        cli_eval = importlib.import_module("promptkit.cli_eval")
    except ModuleNotFoundError as exc:  # pragma: no cover - only while cli_eval is absent
        if exc.name != "promptkit.cli_eval":
            raise
    else:
        cli_eval.register(app)


def main(argv: list[str] | None = None) -> None:
    _register_commands()
    sys.exit(run_app(app, (PromptkitError,), argv))
