"""The `promptkit` console script: a thin Typer app over the library.

The descriptor-set commands (generate, list, show, diff, tokens, add, export, import) live in
`cli_sets` and are added through an explicit `register` call (no import side effects). Commands that
other installed packages provide are added the same way through the `promptkit.commands` entry point
group: trainer registers compare, embed and interpret there (they need a model), so promptkit never
imports trainer. A plugin that is missing or fails to import leaves the other commands working.
"""

from __future__ import annotations

import logging
import sys
from importlib import metadata

import typer

from promptkit import cli_sets
from promptkit.clirun import run_app

log = logging.getLogger(__name__)

COMMANDS_GROUP = "promptkit.commands"


def build_app() -> typer.Typer:
    """A fresh Typer app with every promptkit command registered, plugins' commands included."""
    app = typer.Typer(
        name="promptkit",
        help="LLM-written facial-expression descriptors for DFER-CLIP: generate, version, fit, compare.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # plain help: wraps at any width (rich's option table cut text at 80 columns)
    )
    cli_sets.register(app)
    register_plugins(app)
    return app


def register_plugins(app: typer.Typer, group: str = COMMANDS_GROUP) -> list[str]:
    """Call every `register(app)` named in the entry point `group`; the names of those that loaded."""
    loaded = []
    for entry in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
        try:
            register = entry.load()
        except ImportError as exc:  # e.g. a plugin whose own dependencies are not installed
            log.warning("promptkit: commands %r (%s) not loaded: %s", entry.name, entry.value, exc)
            continue
        register(app)
        loaded.append(entry.name)
    return loaded


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_app(build_app(), argv=argv))


if __name__ == "__main__":
    main()
