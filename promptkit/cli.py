"""The `promptkit` console script: a thin Typer app over the library.

Commands live in two small modules that each add theirs to the app through an explicit `register`
call (no import side effects): descriptor sets (generate, list, show, diff, tokens, add, export,
import) in `cli_sets`, and evaluation (compare, embed, interpret) in `cli_eval`.
"""

from __future__ import annotations

import sys

import typer

from promptkit.clirun import run_app
from promptkit.errors import PromptkitError


def build_app() -> typer.Typer:
    """A fresh Typer app with every promptkit command registered."""
    from promptkit import cli_eval, cli_sets

    app = typer.Typer(
        name="promptkit",
        help="LLM-written facial-expression descriptors for DFER-CLIP: generate, version, fit, compare.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    cli_sets.register(app)
    cli_eval.register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_app(build_app(), (PromptkitError,), argv))


if __name__ == "__main__":
    main()
