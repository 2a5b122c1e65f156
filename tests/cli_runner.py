"""Run the real `promptkit` app in-process (shared by tests/promptkit and tests/trainer/evaluate).

`tests/` is on sys.path (it holds the root conftest.py), so any test module can import this one.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass


@dataclass
class Result:
    code: int
    out: str
    err: str


def run_cli(*args) -> Result:
    """Run the real `promptkit` app in-process through its error translation; code, stdout, stderr."""
    from promptkit.cli import build_app
    from promptkit.clirun import run_app

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run_app(build_app(), argv=[str(a) for a in args])
    return Result(code, out.getvalue(), err.getvalue())


def trainer_cli(capsys, *argv) -> tuple[int, str, str]:
    """Run the real `trainer` console entry point in-process; exit code, stdout, stderr."""
    import pytest

    from trainer.cli import main

    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def interrupted_at(monkeypatch, step: int) -> None:
    """Make `trainer.engine.Trainer._step` raise KeyboardInterrupt (as Ctrl-C) at its `step`-th call
    (1-based) in this test; the calls before it run for real."""
    from trainer.engine import Trainer

    real, calls = Trainer._step, []

    def step_or_stop(self, frames, labels, index=None):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return real(self, frames, labels, index)

    monkeypatch.setattr(Trainer, "_step", step_or_stop)
