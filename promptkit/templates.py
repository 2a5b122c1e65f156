"""Jinja2 templates: the LLM query and the manual prompt templates.

A shipped template is named by its file stem (`llm_query`, `photo_of`, ...); anything else is a
path to the user's own `.j2` file, rendered in a sandbox. Both use StrictUndefined, so a template
that uses a variable nobody gave is an error naming that variable, never an empty string.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import jinja2
import jinja2.sandbox

from promptkit.errors import TemplateError
from promptkit.resources import templates_dir

DEFAULT_QUERY_TEMPLATE = "llm_query"
DEFAULT_NEGATIVE_TEMPLATE = "llm_negative"  # asks what the expression does not show


@dataclass(frozen=True)
class TemplateSource:
    """A template's text and identity (for provenance)."""

    name: str  # shipped stem, or the user file's path as given
    text: str
    user: bool  # True: a user file, rendered sandboxed

    @property
    def sha256(self) -> str:
        return "sha256:" + hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def shipped_templates_dir() -> Path:
    """The shipped .j2 folder (`templates/` in a checkout, inside the package in a wheel)."""
    return templates_dir()


def shipped_templates() -> list[str]:
    """Stems of the shipped templates, sorted."""
    return sorted(p.stem for p in shipped_templates_dir().glob("*.j2"))


def load_template(name_or_path: str | Path) -> TemplateSource:
    """Find a shipped template by stem (with or without `.j2`) or read a user template file."""
    raw = str(name_or_path).strip()
    if not raw:
        raise TemplateError("empty template name: give a shipped template name or a .j2 file path")
    stem = raw[:-3] if raw.endswith(".j2") else raw
    shipped = shipped_templates_dir() / f"{stem}.j2"
    # os.path.isfile, not Path.is_file: a name too long for the file system is "not a file", not an OSError
    looks_like_path = "/" in raw or "\\" in raw or os.path.isfile(raw)
    if not looks_like_path and re.fullmatch(r"[A-Za-z0-9_-]+", stem) and os.path.isfile(shipped):
        return TemplateSource(stem, _read(shipped), user=False)
    path = Path(raw).expanduser()
    if os.path.isfile(path):
        return TemplateSource(raw, _read(path), user=True)
    available = ", ".join(shipped_templates()) or "(none found)"
    raise TemplateError(f"unknown template {raw!r}: use a shipped one ({available}) or a path to a .j2 file")


def render_template(name_or_path: str | Path, **variables: object) -> str:
    """Render a template with StrictUndefined (user files sandboxed); returns stripped text."""
    return render_source(load_template(name_or_path), **variables)


def inline_or_load(template: str | Path | TemplateSource) -> TemplateSource:
    """A TemplateSource as given; a string holding `{{` as an inline template (rendered sandboxed);
    anything else through `load_template` (a shipped name or a .j2 path)."""
    if isinstance(template, TemplateSource):
        return template
    if isinstance(template, str) and "{{" in template:
        return TemplateSource(template, template, user=True)
    return load_template(template)


def render_classes(template: str | Path | TemplateSource, classes: Sequence[str],
                   descriptions: Sequence[str] | None = None) -> list[str]:
    """The one per-class renderer: one stripped text per class, in label order. Variables:
    `class_name`, `index` and, when `descriptions` is given, `description`."""
    source = inline_or_load(template)
    texts = []
    for i, name in enumerate(classes):
        variables: dict[str, object] = {"class_name": name, "index": i}
        if descriptions is not None:
            variables["description"] = descriptions[i]
        texts.append(render_source(source, **variables))
    return texts


def render_source(source: TemplateSource, **variables: object) -> str:
    """Render an already loaded template; errors name the template and the missing variable."""
    env_cls = jinja2.sandbox.SandboxedEnvironment if source.user else jinja2.Environment
    env = env_cls(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
    try:
        template = env.from_string(source.text)
        text = template.render(**variables)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template {source.name!r} line {exc.lineno}: {exc.message}") from exc
    except jinja2.UndefinedError as exc:
        given = ", ".join(sorted(variables)) or "none"
        missing = _undefined_name(str(exc))
        raise TemplateError(
            f"template {source.name!r} uses the variable {missing} which is not given "
            f"(available: {given})"
        ) from exc
    except jinja2.sandbox.SecurityError as exc:
        raise TemplateError(f"template {source.name!r} tried an unsafe operation: {exc}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"template {source.name!r} failed to render: {exc}") from exc
    text = text.strip()
    if not text:
        raise TemplateError(f"template {source.name!r} rendered to empty text")
    return text


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"cannot read template {path}: {exc}") from exc


def _undefined_name(message: str) -> str:
    match = re.search(r"'([^']+)' is undefined", message)
    return repr(match.group(1)) if match else f"({message})"
