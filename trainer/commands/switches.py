"""Typer options built from the switches declared on the config fields (`trainer.declare`).

`@with_switches("run")` gives a command one `typer.Option` per switch declared for it, in place of
its `switches` parameter; the command receives their values as one dict (None: not given) and hands
it to `trainer.options.cli_options`. Typer reads a command's parameters with `inspect.signature`, so
the generated parameters go into the wrapper's `__signature__` (typer 0.12 and 0.29 alike).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Optional

import typer

from trainer.config import RunConfig
from trainer.declare import declared

SWITCHES = "switches"  # the parameter the generated options replace


def switch_parameters(command: str) -> list[inspect.Parameter]:
    """One keyword parameter (a typer.Option, default None: not given) per switch declared for `command`."""
    params = []
    for spec in declared(RunConfig, command):
        option = typer.Option(None, *spec.switch.flags, help=spec.switch.help)
        params.append(inspect.Parameter(spec.switch.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=Optional[spec.cli_type]))
    return params


def with_switches(command: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: the declared switches of `command` become options of the decorated function, whose
    `switches` parameter receives their values as a dict."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        generated = switch_parameters(command)
        names = [p.name for p in generated]
        params: list[inspect.Parameter] = []
        for param in inspect.signature(fn, eval_str=True).parameters.values():
            if param.name == SWITCHES:
                params += generated
            else:
                params.append(param.replace(kind=inspect.Parameter.KEYWORD_ONLY))
        taken = [p.name for p in params]
        if len(set(taken)) != len(taken) or SWITCHES not in inspect.signature(fn).parameters:
            raise TypeError(f"{fn.__name__}: needs a `switches` parameter and no option named like a switch")

        def command_fn(**kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in names}
            return fn(**kwargs, switches=values)

        command_fn.__name__, command_fn.__qualname__ = fn.__name__, fn.__qualname__
        command_fn.__doc__, command_fn.__module__ = fn.__doc__, fn.__module__
        command_fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command_fn.__annotations__ = {p.name: p.annotation for p in params}
        return command_fn

    return decorate
