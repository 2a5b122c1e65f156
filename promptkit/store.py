"""The versioned store of descriptor sets: `<root>/<class set>/vN.json`, immutable once written.

New versions are written to a temp file in the same folder and hard-linked into place, so a
version appears whole or not at all and two concurrent writers can never both create `v3`
(the loser moves on to `v4`). Files are never modified; loading verifies their content hash.
The shipped sets (read-only) fill in for class sets or versions the store root does not have.

The store root is a user store: `--store DIR`, else $PROMPTKIT_STORE, else a per-user data folder
(`user_store_root`). The shipped sets' folder (`descriptions/` in a checkout, inside the package in
a wheel) is never written: a store root there is refused.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from promptkit.classes import BUILTIN_CLASS_SETS, CLIP_TEXTS_FOLDER, check_class_names, check_set_name
from promptkit.errors import ClassSetError, CorruptSetError, PromptkitError, StoreError
from promptkit.fileio import write_new_version
from promptkit.resources import shipped_descriptions_dir
from promptkit.sets import ClassEntry, DescriptorSet, mixed_extras_problem, normalise_text, set_from_dict
from promptkit.tokens import check_description, join_descriptors, shorten

__all__ = ["ClassEntry", "DescriptorSet", "SetSummary", "Store", "is_bare_version", "resolve_store_root",
           "user_store_root"]

_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.json$")
_SET_REF = re.compile(r"^([a-z0-9][a-z0-9_-]*)/(v[1-9][0-9]*|latest)$")
_VERSION_REF = re.compile(r"^(v[1-9][0-9]*|latest)$")
_MAX_WRITE_TRIES = 100


def is_bare_version(ref: str) -> bool:
    """True for `v2` / `latest`: a reference that needs a class set to name a set."""
    return bool(_VERSION_REF.match(str(ref).strip()))


def resolve_store_root(explicit: str | Path | None = None) -> Path:
    """`--store DIR`, else $PROMPTKIT_STORE, else the per-user data folder (`user_store_root`)."""
    chosen = explicit or os.environ.get("PROMPTKIT_STORE")
    return Path(chosen).expanduser() if chosen else user_store_root()


def user_store_root() -> Path:
    """The per-user data folder for descriptor sets: `$XDG_DATA_HOME/promptkit`, else
    `~/.local/share/promptkit` (on macOS `~/Library/Application Support/promptkit`, on Windows
    `%LOCALAPPDATA%\\promptkit`)."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else home / ".local" / "share"  # the XDG spec ignores a relative one
    return base / "promptkit"


@dataclass(frozen=True)
class SetSummary:
    """One line of `promptkit list`."""

    set_id: str
    class_set: str
    version: int
    path: Path
    shipped: bool
    n_classes: int = 0
    source: str = ""
    model: str = ""
    created: str = ""
    problem: str = ""  # non-empty when the file is corrupt


class Store:
    """A store root plus the read-only shipped sets behind it."""

    def __init__(self, root: str | Path, shipped_root: Path | None = None) -> None:
        self.root = Path(root).expanduser()
        self.shipped_root = shipped_root if shipped_root is not None else _shipped_root()

    # ---- reading -------------------------------------------------------------------------------
    def class_sets(self) -> list[str]:
        names = set()
        for base in (self.root, self.shipped_root):
            if base.is_dir():
                names.update(p.name for p in base.iterdir()
                             if p.is_dir() and p.name != CLIP_TEXTS_FOLDER and _has_versions(p))
        return sorted(names)

    def versions(self, class_set: str) -> dict[int, tuple[Path, bool]]:
        """version -> (file, shipped?); the store root's files win over shipped ones."""
        found: dict[int, tuple[Path, bool]] = {}
        for base, shipped in ((self.shipped_root, True), (self.root, False)):
            for number, path in version_files(base / class_set).items():
                is_shipped = shipped or _same_dir(base, self.shipped_root)
                found[number] = (path, is_shipped)
        return dict(sorted(found.items()))

    def load(self, ref: str, class_set: str | None = None) -> DescriptorSet:
        """Load `mafw/v2`, `v2` (with `class_set`), `mafw` / `mafw/latest`, or a path to a JSON file."""
        ref = str(ref).strip()
        name, version = self._parse_ref(ref, class_set)
        if name is None:
            loaded = load_file(Path(ref))
            if class_set and loaded.class_set != class_set:
                raise StoreError(f"{ref} holds class set {loaded.class_set!r}, not {class_set!r}")
            return loaded
        check_set_name(name)
        available = self.versions(name)
        if not available:
            raise StoreError(
                f"no descriptor sets for class set {name!r} in {self.root} or the shipped sets: "
                f"run `promptkit generate --classes {name}` first (`promptkit list` shows what exists)"
            )
        number = max(available) if version == "latest" else int(version[1:])
        if number not in available:
            have = ", ".join(f"v{n}" for n in available)
            raise StoreError(f"unknown version {name}/v{number}: class set {name!r} has {have}")
        path, shipped = available[number]
        result = load_file(path, expect=(name, number))
        result.shipped = shipped
        return result

    def resolve(self, ref: str, class_set: str | None = None) -> DescriptorSet:
        """A reference read in the context of `class_set` (a run's, a test split's, diff's A): a bare
        `vN` / `latest` takes that class set; a qualified reference (`mafw/v2`, `mafw`, a JSON file)
        names its own set, and the caller checks its classes against its own (label by label).
        `load(ref, class_set)` instead refuses a qualified reference of another class set."""
        return self.load(ref, class_set if is_bare_version(ref) else None)

    def list_sets(self, class_set: str | None = None) -> list[SetSummary]:
        rows: list[SetSummary] = []
        for name in [class_set] if class_set else self.class_sets():
            for number, (path, shipped) in self.versions(name).items():
                rows.append(_summarise(name, number, path, shipped))
        return rows

    @staticmethod
    def _parse_ref(ref: str, class_set: str | None) -> tuple[str | None, str]:
        match = _SET_REF.match(ref)
        if match:
            if class_set and class_set != match.group(1):
                raise StoreError(f"set {ref!r} does not belong to class set {class_set!r}")
            return match.group(1), match.group(2)
        if _VERSION_REF.match(ref):
            if not class_set:
                raise StoreError(f"{ref!r} needs a class set: write it as <class set>/{ref}, e.g. mafw/{ref}")
            return class_set, ref
        if ref.endswith(".json") or os.sep in ref or "/" in ref:
            return None, ref
        if re.fullmatch(r"[a-z0-9][a-z0-9_-]*", ref):
            return ref, "latest"
        raise StoreError(f"bad set reference {ref!r}: use <class set>/vN (e.g. mafw/v2), vN, or a path to a .json file")

    # ---- writing -------------------------------------------------------------------------------
    def add(
        self, class_set: str, classes: list[ClassEntry], provenance: dict, n_ctx: int
    ) -> DescriptorSet:
        """Validate and write the next version of `class_set`; returns it with version and hash.

        Every description, negative description and variant must be non-empty and fit the budget;
        negatives and variants must be on every class or on none. The description is what trains;
        descriptors, when given, must be exactly what it is made of (joined in order)."""
        check_set_name(class_set)
        self._refuse_shipped()
        self._check_classes(class_set, [entry.name for entry in classes])
        for entry in classes:
            entry.tokens = _checked_tokens(entry.description, n_ctx, entry.name)
            _check_derived(entry.description, entry.descriptors, repr(entry.name))
            if entry.negative is not None:
                entry.negative.tokens = _checked_tokens(entry.negative.description, n_ctx, f"{entry.name} (negative)")
                _check_derived(entry.negative.description, entry.negative.descriptors, f"{entry.name!r} (negative)")
            for number, variant in enumerate(entry.variants, start=1):
                _checked_tokens(variant, n_ctx, f"{entry.name} (variant {number})")
        mixed = mixed_extras_problem(list(classes))
        if mixed:
            raise StoreError(f"class set {class_set!r}: {mixed}")
        check_provenance(provenance)
        result = DescriptorSet(0, class_set, list(classes), dict(provenance), n_ctx=n_ctx)
        result.content_hash = result.compute_hash()
        result.record_hash = result.compute_record_hash()
        return self._write_next(result)

    def check_can_add(self, class_set: str, names: list[str]) -> None:
        """Fail early (before any LLM call) if a version of these classes could not be written."""
        check_set_name(class_set)
        self._refuse_shipped()
        self._check_classes(class_set, names)
        existing = self.root / class_set
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise StoreError(
                f"store {self.root} is not writable ({existing} is not a writable folder): "
                "choose another with --store DIR or PROMPTKIT_STORE"
            )

    @property
    def is_shipped_root(self) -> bool:
        """The store root is the shipped sets' folder (or inside it)."""
        try:
            root, shipped = self.root.resolve(), self.shipped_root.resolve()
        except OSError:
            return False
        return root == shipped or shipped in root.parents

    def _refuse_shipped(self) -> None:
        if self.is_shipped_root:
            raise StoreError(
                f"{self.root} holds the shipped sets, which are read-only: new versions go to a user store "
                f"(--store DIR, $PROMPTKIT_STORE, default {user_store_root()})"
            )

    def _check_classes(self, class_set: str, names: list[str]) -> None:
        check_class_names(names, where=f"class set {class_set!r}")
        builtin = BUILTIN_CLASS_SETS.get(class_set)
        expected = list(builtin) if builtin else None
        if expected is None and self.versions(class_set):
            expected = self.load(f"{class_set}/latest").class_names
        if expected is not None and list(names) != expected:
            raise ClassSetError(
                f"classes {names} do not match class set {class_set!r} {expected} (same names, same label "
                "order); pick another class set name for a different class list"
            )

    def _write_next(self, result: DescriptorSet) -> DescriptorSet:
        folder = self.root / result.class_set

        def render(number: int) -> str:
            result.version = number
            return result.to_json()

        try:
            target, _ = write_new_version(folder, max(self.versions(result.class_set), default=0) + 1, render,
                                          _MAX_WRITE_TRIES)
        except OSError as exc:
            raise StoreError(
                f"store {self.root} is not writable ({exc.strerror or exc}): "
                "choose another with --store DIR or PROMPTKIT_STORE"
            ) from exc
        result.path, result.shipped = target, False
        return result


def load_file(path: Path, expect: tuple[str, int] | None = None) -> DescriptorSet:
    """Read and verify one version file; `expect` = (class set, version) implied by its location."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise StoreError(f"no such descriptor set file: {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CorruptSetError(f"cannot read {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CorruptSetError(
            f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}): restore it from version control or remove it"
        ) from exc
    result = set_from_dict(data, str(path))
    if expect is not None and (result.class_set, result.version) != expect:
        raise CorruptSetError(
            f"{path} holds {result.set_id} but its location says {expect[0]}/v{expect[1]}: restore or remove it"
        )
    result.path = path
    return result


def _summarise(name: str, number: int, path: Path, shipped: bool) -> SetSummary:
    base = dict(set_id=f"{name}/v{number}", class_set=name, version=number, path=path, shipped=shipped)
    try:
        loaded = load_file(path, expect=(name, number))
    except PromptkitError as exc:
        return SetSummary(**base, problem=str(exc))
    prov = loaded.provenance
    return SetSummary(
        **base,
        n_classes=len(loaded.classes),
        source=str(prov.get("source", "")),
        model=str(prov.get("model", "")),
        created=str(prov.get("created", "")),
    )


def _shipped_root() -> Path:
    """The shipped sets (`descriptions/` in a checkout, inside the package in a wheel)."""
    return shipped_descriptions_dir()


def _checked_tokens(description: str, n_ctx: int, label: str) -> int:
    """Token count of one description that must fit the budget (BudgetError) and not be empty (StoreError)."""
    used = check_description(description, n_ctx, label=label)
    if not description.strip():
        raise StoreError(f"class {label!r} has an empty description")
    return used


def _check_derived(description: str, descriptors: list[str], label: str) -> None:
    """StoreError when `descriptors` are given but do not join into `description` (ignoring case,
    whitespace and the final full stop): one of the two was edited without the other."""
    if not descriptors:
        return
    joined = join_descriptors(descriptors)
    if _comparable(joined) != _comparable(description):
        raise StoreError(
            f"class {label}: description {shorten(description, 70)!r} is not its descriptors joined ({shorten(joined, 70)!r}); "
            "the description is what trains: edit both together, or remove 'descriptors' to keep the description as written"
        )


def _comparable(text: str) -> str:
    return normalise_text(text).rstrip(" .;,")


def check_provenance(provenance: dict) -> None:
    if not isinstance(provenance, dict) or not provenance.get("source"):
        raise StoreError("provenance must be a dict with a 'source' entry")
    secret = [key for key in provenance if re.search(r"api.?key|secret|password|authori[sz]ation", str(key), re.I)]
    if secret:
        raise StoreError(f"provenance must not hold credentials (found key {secret[0]!r})")


def version_files(folder: Path) -> dict[int, Path]:
    """version number -> `vN.json` file in `folder` ({} when there is no such folder)."""
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.iterdir():
        match = _VERSION_FILE.match(path.name)
        if match and path.is_file():
            found[int(match.group(1))] = path
    return found


def _has_versions(folder: Path) -> bool:
    return bool(version_files(folder))


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
