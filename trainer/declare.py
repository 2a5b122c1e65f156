"""Declare a run switch once: on its config field, as `field(..., metadata=switch(...))`.

A `Switch` names the command-line flag(s) of one config field, its help, the commands that show it
and, where the flag is not one-to-one with the field, a small hook that turns the flag's value into
the section's fields (`--text template:NAME` sets text.source and text.template). The Typer
commands are built from these declarations (`trainer.commands.switches`) and the flat option values
are mapped back onto the nested config generically (`trainer.options`); `--set key=value` reaches
every field, declared or not. Adding a switch is then the field (with its declaration) and the code
that acts on it.

Library code: no Typer here, only plain data, so the model and data layers can declare their fields.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterator

RUN, COMPARE = "run", "compare"  # the commands built from the declarations


@dataclass(frozen=True)
class Switch:
    """The command-line face of one config field.

    flags: click-style declarations, e.g. ("--lr-image",), ("--allow-overlap",) for a bool that is
    only switched on, ("--deterministic/--no-deterministic",) for an on/off pair; the Python name of
    the option is the first flag's (`--frames` -> frames). cli_type: the type the CLI parses (default:
    the field's own, without None). to_fields: value -> {field name in the same section: value} for a
    flag that is not one-to-one with its field (default: {the field: value}). summary: a method
    switch the run's summary names when it is not at its default (`peft lora`, `negatives`).
    """

    flags: tuple[str, ...]
    help: str
    commands: tuple[str, ...] = (RUN,)
    cli_type: type | None = None
    to_fields: Callable[[Any], dict[str, Any]] | None = None
    summary: bool = False

    @property
    def name(self) -> str:
        """The option's Python name: the first flag without dashes (`--lr-image` -> lr_image)."""
        return self.flags[0].split("/")[0].lstrip("-").replace("-", "_")

    @property
    def label(self) -> str:
        """The switch in words (`--label-smoothing` -> label smoothing)."""
        return self.name.replace("_", " ")


def switch(*flags: str, help: str, commands: tuple[str, ...] = (RUN,), cli_type: type | None = None,
           to_fields: Callable[[Any], dict[str, Any]] | None = None, summary: bool = False) -> dict[str, Switch]:
    """Field metadata declaring the field's switch: `field(default=..., metadata=switch("--lr-image", help=...))`."""
    return {"cli": Switch(tuple(flags), help, tuple(commands), cli_type, to_fields, summary)}


@dataclass(frozen=True)
class Declared:
    """One declared switch with where it acts: `section` is () for a top-level field, ("optim",) etc."""

    section: tuple[str, ...]
    field: str
    switch: Switch
    field_type: Any
    default: Any

    def value(self, config: dict[str, Any]) -> Any:
        """This field's value in a config dict (`RunConfig.to_dict()`)."""
        for part in self.section:
            config = config.get(part) or {}
        return config.get(self.field, self.default)

    @property
    def cli_type(self) -> type:
        if self.switch.cli_type is not None:
            return self.switch.cli_type
        args = [a for a in typing.get_args(self.field_type) if a is not type(None)]
        return args[0] if args else self.field_type

    def fields(self, value: Any) -> dict[str, Any]:
        """The section's fields this switch's value sets."""
        hook = self.switch.to_fields
        return hook(value) if hook is not None else {self.field: value}


def declared(root: type, command: str | None = None) -> Iterator[Declared]:
    """Every switch declared on `root` and the dataclasses it nests, in field order (only those
    `command` shows, when given)."""
    yield from _walk(root, (), command)


def _walk(cls: type, section: tuple[str, ...], command: str | None) -> Iterator[Declared]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            yield from _walk(hint, (*section, f.name), command)
            continue
        spec = f.metadata.get("cli")
        if spec is not None and (command is None or command in spec.commands):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            yield Declared(section, f.name, spec, hint, default)


def switch_table(root: type) -> list[str]:
    """The declared switches of `root` as markdown table rows (docs/architecture.md holds this table
    between its `switches` markers; `python -m trainer.declare` prints it)."""
    rows = ["| flag | field | default | commands |", "| --- | --- | --- | --- |"]
    for spec in declared(root):
        field = ".".join((*spec.section, spec.field))
        rows.append(f"| `{spec.switch.flags[0]}` | `{field}` | `{spec.default!r}` | {', '.join(spec.switch.commands)} |")
    return rows


if __name__ == "__main__":  # pragma: no cover - a docs helper
    from trainer.config import RunConfig

    print("\n".join(switch_table(RunConfig)))
