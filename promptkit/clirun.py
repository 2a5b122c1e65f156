"""Run a Typer app so that every mistake becomes one clear line on stderr and a non-zero exit.

Shared by the `promptkit` and `trainer` console scripts: the library raises, the CLI translates.

The app's click command is driven directly (`make_context` + `invoke`) rather than through
`Typer.__call__`, so nothing is caught or reformatted before it reaches this module. Typer's own
exception classes moved between releases (typer < 0.25 re-uses click's; later releases vendor a
copy of click as `typer._click`), so the classes are collected from every module that may define
them instead of being imported from one. Exits:

- 0: success (also `--help`);  1: a library error (`errors`: the toolkit's one root, `ToolkitError`,
  which every error of promptkit and trainer derives from);  2: a usage mistake (unknown
  command or option, missing or bad option value, missing argument);  130: Ctrl-C.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Sequence

import typer

from promptkit.errors import ToolkitError

_EXCEPTION_MODULES = ("typer._click.exceptions", "typer.exceptions", "click.exceptions")


def _classes(name: str) -> tuple[type[BaseException], ...]:
    """Every class called `name` in the exception modules that exist in this environment."""
    found: list[type[BaseException]] = []
    for module_name in _EXCEPTION_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException) and cls not in found:
            found.append(cls)
    extra = getattr(typer, name, None)  # typer.Exit / typer.Abort, whichever module defines them
    if isinstance(extra, type) and issubclass(extra, BaseException) and extra not in found:
        found.append(extra)
    return tuple(found)


def run_app(app: typer.Typer, errors: tuple[type[BaseException], ...] = (ToolkitError,),
            argv: Sequence[str] | None = None) -> int:
    """Invoke `app` on `argv` (default: sys.argv[1:]); return the exit status after printing at most
    one `error: ...` line for a library error, a usage mistake or an interruption."""
    usage_errors, exits, aborts = _classes("ClickException"), _classes("Exit"), _classes("Abort")
    args = list(argv) if argv is not None else sys.argv[1:]
    prog = app.info.name or "command"
    try:
        command = typer.main.get_command(app)
        with command.make_context(prog, args) as ctx:
            result = command.invoke(ctx)
    except BrokenPipeError:  # `... | head` closed the pipe: stop quietly, as other command-line tools do
        _quiet_stdout()
        return 0
    except KeyboardInterrupt as exc:  # a library may say what it kept: KeyboardInterrupt("run folder ... kept")
        _say(f"interrupted (Ctrl-C); stopped{f': {exc}' if str(exc) else ''}")
        return 130
    except errors as exc:
        _say(f"error: {exc}")
        return 1
    except exits as exc:  # --help, ctx.exit()
        return int(getattr(exc, "exit_code", 0) or 0)
    except aborts:
        _say("interrupted; stopped")
        return 130
    except usage_errors as exc:
        return _usage(exc, prog)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (in-process tests)
        pass


def _usage(exc: BaseException, prog: str) -> int:
    """One line for a click/typer usage error (no usage block); `no_args_is_help` shows the help."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        print(ctx.get_help(), file=sys.stdout)
        return 0
    code = getattr(exc, "exit_code", 2)
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    message = " ".join(str(message).split()) or type(exc).__name__
    path = getattr(ctx, "command_path", None) or prog
    hint = f" (see `{path} --help`)" if code == 2 else ""
    _say(f"error: {message}{hint}")
    return code if isinstance(code, int) and code else 2


def _say(line: str) -> None:
    from promptkit.llm import redact_credentials  # never print a URL's user:password

    print(redact_credentials(" ".join(line.split("\n"))), file=sys.stderr)
