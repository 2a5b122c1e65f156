"""Nested config dicts: deep merge, reading a JSON config file, `--set key=value` overrides typed by
the dataclass they target, dropping unset (None) options. Knows no particular config; used by
`trainer.config` for RunConfig.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

from promptkit.fileio import read_json_object

from trainer.errors import ConfigError


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `override` into a copy of `base` (nested dicts merge, other values replace)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config_file(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Read a JSON object (a config, or a full config.json / plan.json of an earlier run); `what`
    names the file in the one-line ConfigError for a missing, unreadable or malformed file."""
    return read_json_object(path, what, ConfigError)


def set_value(raw: dict[str, Any], assignment: str, root: type) -> dict[str, Any]:
    """Apply one `key=value` override (dotted key) to a nested config dict, coercing the value to
    the type of the field of the dataclass `root` it targets."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set needs key=value (e.g. optim.lr_image=1e-4); got {assignment!r}")
    parts = key.split(".")
    value = _coerce(parts, text.strip(), root)
    out = dict(raw)
    node = out
    for part in parts[:-1]:
        child = node.get(part)
        child = dict(child) if isinstance(child, dict) else {}
        node[part] = child
        node = child
    node[parts[-1]] = value
    return out


def _coerce(parts: list[str], text: str, root: type) -> Any:
    """Turn the text of a --set value into the type of the field it targets."""
    hint = _field_type(parts, root)
    if hint is None:  # model.* and unknown keys: JSON if it parses, else the string itself
        return _json_or_text(text)
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional and text.lower() in ("null", "none"):
        return None
    base = next(a for a in args if a is not type(None)) if optional else hint
    try:
        if base is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if base in (int, float, str):
            return base(text)
        if typing.get_origin(base) is tuple:  # 30,40 | 30 40 | [30, 40] (a JSON list)
            return tuple(int(v) for v in text.strip("[]").replace(",", " ").split())
    except ValueError:
        raise ConfigError(f"--set {'.'.join(parts)}: cannot read {text!r} as {getattr(base, '__name__', base)}") from None
    return _json_or_text(text)


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _field_type(parts: list[str], root: type):
    cls: Any = root
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(cls):
            return None
        hints = typing.get_type_hints(cls)
        if part not in hints:
            return None
        hint = hints[part]
        if i == len(parts) - 1:
            return hint
        cls = hint
    return None


def drop_none(options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, dict):
            inner = drop_none(value)
            if inner:
                out[key] = inner
        elif value is not None:
            out[key] = value
    return out
