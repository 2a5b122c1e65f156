"""Refuse, with one clear line, to start loader workers from a script's unguarded top level.

Loader workers start from a fork server (`trainer.data.dataset`), and every worker process
re-imports the script that started the program (as `__mp_main__`), as spawned processes do. Code at
the top level of that script, outside `if __name__ == "__main__":`, then runs again in each worker:
it builds another loader there and the worker dies ("DataLoader worker exited unexpectedly").
`check_main_guard` finds that case before any worker starts: the statement of the main script that
is executing is read from its source, and anything but an `if __name__ ...` block is refused.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from trainer.errors import DataError


def _executing_main_line() -> int | None:
    """The line of the `__main__` module's top-level code that is running now (None: none is)."""
    main = sys.modules.get("__main__")
    names = getattr(main, "__dict__", None)
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals is names:
            return frame.f_lineno
        frame = frame.f_back
    return None


def unguarded_main_line() -> tuple[Path, int] | None:
    """(script, line) when the running top-level statement of the main script is not under an
    `if __name__ == "__main__":` guard; None when it is, or when there is no script (a REPL, a
    notebook) or its source cannot be read."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    line = _executing_main_line()
    if not path or line is None:
        return None
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if node.lineno <= line <= (node.end_lineno or node.lineno):
            guarded = isinstance(node, ast.If) and "__name__" in ast.unparse(node.test)
            return None if guarded else (Path(path), line)
    return None


def check_main_guard(what: str = "data-loader workers", instead: str = "workers=0") -> None:
    """A DataError naming the script line when starting `what` (processes that re-import the main
    script) now would re-run unguarded script code; `instead` is the setting that needs none."""
    found = unguarded_main_line()
    if found is not None:
        path, line = found
        raise DataError(f"{path}:{line} starts {what} from the top level of the script; put that code under "
                        f"`if __name__ == \"__main__\":` (each worker re-imports the script), or use {instead}")
