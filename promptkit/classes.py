"""Class sets: the built-in DFER label orders and the user's own lists.

The order of `ClassSet.classes` is the label order everywhere downstream (label index i is
`classes[i]`), so it is never sorted or de-duplicated silently.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from promptkit.errors import ClassSetError

_SEVEN = ("happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear")

BUILTIN_CLASS_SETS: dict[str, tuple[str, ...]] = {
    "dfew": _SEVEN,
    "ferv39k": _SEVEN,
    "mafw": _SEVEN + ("contempt", "anxiety", "helplessness", "disappointment"),
}

CLIP_TEXTS_FOLDER = "clip-texts"  # the store root's folder of clip-text sets (promptkit.cliptexts)
_SET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_MAX_CLASS_NAME = 100


@dataclass(frozen=True)
class ClassSet:
    """A named, ordered list of class names (label index = position)."""

    name: str
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        check_set_name(self.name)
        object.__setattr__(self, "classes", tuple(self.classes))
        check_class_names(self.classes, where=f"class set {self.name!r}")

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN_CLASS_SETS


def check_set_name(name: str) -> str:
    """Validate a class-set name (it becomes a folder name in the store)."""
    if not isinstance(name, str) or not _SET_NAME.match(name):
        raise ClassSetError(
            f"bad class set name {name!r}: use lower-case letters, digits, '-' or '_' "
            "(it names a folder in the store)"
        )
    if name == CLIP_TEXTS_FOLDER:
        raise ClassSetError(
            f"the name {name!r} is reserved: the store keeps clip-text sets in that folder; choose another name"
        )
    return name


def check_class_names(names: tuple[str, ...] | list[str], where: str = "class list") -> None:
    """Reject empty lists, empty / multi-line / over-long names and duplicates (case-insensitive)."""
    if len(names) == 0:
        raise ClassSetError(f"{where} is empty: give at least one class name")
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ClassSetError(f"{where}: class {index} has an empty name (got {name!r})")
        if name != name.strip() or "\n" in name or "\r" in name:
            raise ClassSetError(f"{where}: class {index} name {name!r} has surrounding or embedded line breaks/spaces")
        if len(name) > _MAX_CLASS_NAME:
            raise ClassSetError(f"{where}: class {index} name is longer than {_MAX_CLASS_NAME} characters ({name[:30]!r}...)")
        key = name.casefold()
        if key in seen:
            raise ClassSetError(
                f"{where}: duplicate class name {name!r} (positions {seen[key]} and {index}); "
                "each class must appear once"
            )
        seen[key] = index


def resolve_classes(spec: str, name: str | None = None) -> ClassSet:
    """Turn `dfew` | `ferv39k` | `mafw` | `"a,b,c"` | a path to a one-class-per-line file into a ClassSet.

    `name` names a user class set (default: `custom` for a comma list, the file's stem for a file);
    it is ignored for the built-in sets.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ClassSetError("no classes given: use dfew, ferv39k, mafw, a comma list 'a,b,c' or a file")
    spec = spec.strip()
    if spec.lower() in BUILTIN_CLASS_SETS:
        key = spec.lower()
        return ClassSet(key, BUILTIN_CLASS_SETS[key])
    path = Path(spec).expanduser()
    if os.path.isfile(path):  # not Path.is_file: a long comma list is "File name too long", not a file
        return ClassSet(name or _stem_name(path), _read_class_file(path))
    if "," in spec:
        return ClassSet(name or "custom", tuple(part.strip() for part in spec.split(",")))
    known = ", ".join(BUILTIN_CLASS_SETS)
    raise ClassSetError(
        f"unknown class set {spec!r}: use one of {known}, a comma list like 'joy,anger,calm', "
        "or a path to a file with one class per line"
    )


def _read_class_file(path: Path) -> tuple[str, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ClassSetError(f"cannot read class file {path}: {exc}") from exc
    lines = [line.strip() for line in text.splitlines()]
    # Blank lines and '#' comments are allowed around the list; a blank line inside it is not.
    names = [line for line in lines if line and not line.startswith("#")]
    if not names:
        raise ClassSetError(f"class file {path} holds no class names: write one class per line")
    return tuple(names)


def _stem_name(path: Path) -> str:
    stem = re.sub(r"[^a-z0-9_-]+", "-", path.stem.lower()).strip("-_")
    return stem or "custom"
