"""The `trainer` console script: a thin Typer app over the library.

Command groups live in `trainer/commands/` and add theirs to the app through explicit `register`
calls: model commands (import-official, info), run commands (run, eval, predict, synth) and
`pretrain` (the tiny face-CLIP), data commands (prepare, doctor), share commands (export, report).
"""

from __future__ import annotations

import sys

import typer

from promptkit.clirun import run_app

from trainer.commands import data_cmds, model_cmds, pretrain_cmd, run_cmds, share_cmds


def build_app() -> typer.Typer:
    """A fresh Typer app with every trainer command registered."""
    app = typer.Typer(
        name="trainer",
        help="Train and evaluate DFER-CLIP (learned context + LLM descriptions + temporal model) on video.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # plain help: wraps at any width (rich's option table cut text at 80 columns)
    )
    run_cmds.register(app)
    model_cmds.register(app)
    pretrain_cmd.register(app)
    data_cmds.register(app)
    share_cmds.register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_app(build_app(), argv=argv))


if __name__ == "__main__":
    main()
