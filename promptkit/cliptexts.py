"""Clip-text sets: one text per video clip (what a vision LLM saw change in the face), versioned.

A clip-text set maps stable clip ids (`trainer.data.annotations.clip_id`) to texts, and names the
clips that got none (`missing`, with the reason). Its files live beside the descriptor sets, at
`<store root>/clip-texts/<name>/vN.json`, written the same way (temp file + hard link, read-only,
`promptkit.fileio.write_new_version`) and never changed: loading checks a record hash over the whole
file, so an edited file is refused. The content hash (sha256 of the canonical texts and missing
reasons, sorted keys) is the set's identity.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from promptkit.classes import CLIP_TEXTS_FOLDER, check_set_name
from promptkit.errors import ClassSetError, CorruptSetError, PromptkitError, StoreError
from promptkit.fileio import read_json_object, write_new_version
from promptkit.sets import canonical_sha256
from promptkit.store import Store, check_provenance, version_files

FORMAT = "promptkit-clip-text-set"
FORMAT_VERSION = 1
_REF = re.compile(r"^([a-z0-9][a-z0-9_-]*)(?:/(v[1-9][0-9]*|latest))?$")


@dataclass
class ClipTextSet:
    """A stored version: `texts` (clip id -> text) and `missing` (clip id -> why there is no text)."""

    name: str
    version: int
    texts: dict[str, str]
    missing: dict[str, str]
    provenance: dict
    content_hash: str = ""
    record_hash: str = ""
    path: Path | None = field(default=None, compare=False)

    @property
    def set_id(self) -> str:
        return f"{self.name}/v{self.version}"

    def compute_hash(self) -> str:
        """The identity: sha256 of the canonical texts and missing reasons."""
        return canonical_sha256({"texts": self.texts, "missing": self.missing})

    def compute_record_hash(self) -> str:
        """What loading verifies: everything stored but the version number and the hashes."""
        return canonical_sha256({"format": FORMAT, "format_version": FORMAT_VERSION, "name": self.name,
                        "texts": self.texts, "missing": self.missing, "provenance": self.provenance})

    def to_dict(self) -> dict:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "name": self.name, "version": self.version,
                "set_id": self.set_id, "content_hash": self.content_hash, "record_hash": self.record_hash,
                "provenance": self.provenance, "texts": dict(sorted(self.texts.items())),
                "missing": dict(sorted(self.missing.items()))}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class ClipTextSummary:
    """One line of `promptkit list` for a clip-text set."""

    set_id: str
    name: str
    version: int
    path: Path
    n_clips: int = 0
    n_missing: int = 0
    model: str = ""
    source: str = ""
    created: str = ""
    problem: str = ""  # non-empty when the file is corrupt


def is_clip_text_file(path: Path) -> bool:
    """True when `path` is a JSON file that says it is a clip-text set (for `show FILE`)."""
    try:
        return read_json_object(path, "set file", StoreError).get("format") == FORMAT
    except StoreError:
        return False


def set_from_dict(data: dict, where: str) -> ClipTextSet:
    """Validate a parsed version file; CorruptSetError naming `where` on any problem."""
    if data.get("format") != FORMAT:
        raise CorruptSetError(f"{where}: not a promptkit clip-text set (format is {data.get('format')!r})")
    if data.get("format_version") != FORMAT_VERSION:
        raise CorruptSetError(f"{where}: unsupported format_version {data.get('format_version')!r}")
    for key, kind in (("name", str), ("version", int), ("texts", dict), ("missing", dict), ("provenance", dict),
                      ("content_hash", str), ("record_hash", str)):
        if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
            raise CorruptSetError(f"{where}: field {key!r} must be {kind.__name__}, got {data.get(key)!r:.60}")
    result = ClipTextSet(data["name"], data["version"], data["texts"], data["missing"], data["provenance"],
                         data["content_hash"], data["record_hash"])
    problem = _content_problem(result.texts, result.missing)
    if problem:
        raise CorruptSetError(f"{where}: {problem}")
    if result.compute_record_hash() != result.record_hash or result.compute_hash() != result.content_hash:
        raise CorruptSetError(f"{where} was modified after it was written (hash mismatch); versions are immutable: "
                              "restore the file, or describe the clips again as a new version")
    return result


def _content_problem(texts: object, missing: object) -> str:
    """"" for a valid pair of maps, else what is wrong with them."""
    for what, mapping in (("texts", texts), ("missing", missing)):
        if not isinstance(mapping, dict):
            return f"{what} must map clip ids to strings, got {type(mapping).__name__}"
        for key, value in mapping.items():
            if not isinstance(key, str) or not key.strip():
                return f"{what}: a clip id is empty ({key!r})"
            if not isinstance(value, str) or not value.strip():
                return f"{what}: clip {key!r} has an empty or non-text value ({value!r:.40})"
    both = sorted(set(texts) & set(missing))
    if both:
        return f"clip {both[0]!r} has both a text and a missing reason"
    if not texts and not missing:
        return "the set holds no clips"
    return ""


class ClipTextStore:
    """The clip-text sets of one store root (`<root>/clip-texts/<name>/vN.json`)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.folder = self.root / CLIP_TEXTS_FOLDER

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> dict[int, Path]:
        return dict(sorted(version_files(self.folder / name).items()))

    def has(self, name: str) -> bool:
        return bool(self.versions(name))

    def load(self, ref: str | Path) -> ClipTextSet:
        """`world`, `world/v2`, `world/latest`, or a path to a .json file."""
        text = str(ref).strip()
        match = _REF.match(text)
        if match is None:
            if _names_a_file(text):
                return load_file(Path(text))
            raise StoreError(f"bad clip-text set reference {text!r}: use NAME, NAME/vN (e.g. world/v2) or a .json file")
        name, version = match.group(1), match.group(2) or "latest"
        available = self.versions(name)
        if not available:
            have = ", ".join(self.names()) or "none"
            raise StoreError(f"no clip-text set {name!r} in {self.folder} (have: {have}): "
                             "make one with `promptkit describe-clips`")
        number = max(available) if version == "latest" else int(version[1:])
        if number not in available:
            have = ", ".join(f"v{n}" for n in available)
            raise StoreError(f"unknown version {name}/v{number}: clip-text set {name!r} has {have}")
        result = load_file(available[number])
        if (result.name, result.version) != (name, number):
            raise CorruptSetError(f"{available[number]} holds {result.set_id} but its location says {name}/v{number}: "
                                  "restore or remove it")
        return result

    def check_name(self, name: str) -> str:
        """A valid clip-text set name (a folder name), else StoreError."""
        try:
            check_set_name(name)
        except ClassSetError:
            raise StoreError(f"bad clip-text set name {name!r}: use lower-case letters, digits, '-' or '_' "
                             "(it names a folder in the store)") from None
        return name

    def add(self, name: str, texts: dict[str, str], missing: dict[str, str], provenance: dict) -> ClipTextSet:
        """Validate and write the next version of `name`; returns it with version, hashes and path."""
        self.check_name(name)
        problem = _content_problem(texts, missing)
        if problem:
            raise StoreError(f"clip-text set {name!r}: {problem}")
        check_provenance(provenance)
        result = ClipTextSet(name, 0, dict(sorted(texts.items())), dict(sorted(missing.items())), dict(provenance))
        result.content_hash = result.compute_hash()
        result.record_hash = result.compute_record_hash()

        def render(number: int) -> str:
            result.version = number
            return result.to_json()

        try:
            path, _ = write_new_version(self.folder / name, max(self.versions(name), default=0) + 1, render)
        except OSError as exc:
            raise StoreError(f"store {self.root} is not writable ({exc.strerror or exc}): "
                             "choose another with --store DIR or PROMPTKIT_STORE") from exc
        result.path = path
        return result

    def work_path(self, name: str, key: str) -> Path:
        """The resumable work file of an unfinished describe run (never a version)."""
        return self.folder / self.check_name(name) / f".work-{key}.jsonl"

    def list(self) -> list[ClipTextSummary]:
        rows = []
        for name in self.names():
            for number, path in self.versions(name).items():
                rows.append(_summarise(name, number, path))
        return rows


KINDS = ("descriptions", "clip-texts")


def set_kind(ref: str, descriptor_sets: Store, clip_texts: ClipTextStore, kind: str | None = None) -> str:
    """Which kind of set `ref` names: "descriptions" or "clip-texts". `kind` (--kind) decides when
    given; a .json file says what it holds; a name that only a clip-text set has is one; a name that
    both kinds have is refused (StoreError), asking for --kind."""
    if kind is not None:
        if kind not in KINDS:
            raise StoreError(f"unknown --kind {kind!r}: use clip-texts or descriptions")
        return kind
    text = str(ref).strip()
    match = _REF.match(text)
    if match is None:
        return "clip-texts" if _names_a_file(text) and is_clip_text_file(Path(text)) else "descriptions"
    name = match.group(1)
    if not clip_texts.has(name):
        return "descriptions"
    if descriptor_sets.versions(name):
        raise StoreError(f"{name!r} names both a descriptor set and a clip-text set: "
                         "add --kind descriptions or --kind clip-texts")
    return "clip-texts"


def _names_a_file(ref: str) -> bool:
    """A reference that is not NAME[/vN] but a path (it ends in .json or holds a separator)."""
    return ref.endswith(".json") or "/" in ref or "\\" in ref


def load_file(path: Path) -> ClipTextSet:
    data = read_json_object(path, "clip-text set", CorruptSetError, missing=f"no such clip-text set file: {path}")
    result = set_from_dict(data, str(path))
    result.path = path
    return result


def _summarise(name: str, number: int, path: Path) -> ClipTextSummary:
    base = dict(set_id=f"{name}/v{number}", name=name, version=number, path=path)
    try:
        loaded = load_file(path)
    except PromptkitError as exc:
        return ClipTextSummary(**base, problem=str(exc))
    prov = loaded.provenance
    return ClipTextSummary(**base, n_clips=len(loaded.texts) + len(loaded.missing), n_missing=len(loaded.missing),
                           model=str(prov.get("model", "")), source=str(prov.get("source", "")),
                           created=str(prov.get("created", "")))


__all__ = ["KINDS", "ClipTextSet", "ClipTextStore", "ClipTextSummary", "is_clip_text_file", "load_file", "set_kind"]
