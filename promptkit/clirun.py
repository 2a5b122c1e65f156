"""Run a Typer app so that a library error becomes one clear line on stderr and a non-zero exit.

Shared by the `promptkit` and `trainer` console scripts: the library raises, the CLI translates.
"""

from __future__ import annotations

import sys
from typing import Sequence

import click
import typer


def run_app(app: typer.Typer, errors: tuple[type[BaseException], ...], argv: Sequence[str] | None = None) -> int:
    """Invoke `app`; map `errors` and click usage problems to `error: ...` and an exit status."""
    try:
        result = app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except errors as exc:
        _say(f"error: {exc}")
        return 1
    except click.exceptions.ClickException as exc:  # usage errors, bad option values
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        _say("aborted")
        return 130
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0


def _say(line: str) -> None:
    print(line.replace("\n", " "), file=sys.stderr)
