"""The descriptor-set data model: entries per class, the set, its JSON form and its content hash.

Format version 2 adds, per class, an optional negative description (what the expression does not
show) and optional variants (several full descriptions, one per LLM answer). A set has them for
every class or for none.

Two hashes. The content hash is a set's identity: sha256 of what trains, normalised as CLIP's
tokenizer reads it (class names, descriptions, negative descriptions, variants; Unicode NFC, runs
of whitespace as one space, lower case), so an exported and re-imported set, or the same texts
written twice, have the same one. The record hash covers the whole stored record (provenance, raw
answers, descriptors, ...) and is what loading checks, so a file edited after it was written is
refused. Format version 3 files store both (`content_hash`, `record_hash`); versions 1 and 2 stored
one hash of the whole record under `content_hash`: they still load and verify with it, unchanged,
and get their content hash computed like any other set.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from promptkit.errors import CorruptSetError, SetContentError

FORMAT = "promptkit-descriptor-set"
FORMAT_VERSION = 3  # what new sets are written as
SUPPORTED_FORMAT_VERSIONS = (1, 2, 3)
_RECORD_HASH_SINCE = 3  # from this format on, `content_hash` is the identity and `record_hash` the record's
_V2_KEYS = ("negative", "variants")  # class keys a format_version 1 file must not hold


def toolkit_version() -> str:
    """The installed toolkit's version, for provenance ("unknown" when not installed)."""
    try:
        return metadata.version("dferclip-toolkit")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class NegativeEntry:
    """What a class's expression does not show: absent features (in rank order) joined into a description."""

    descriptors: list[str]
    description: str
    tokens: int
    raw_answers: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # descriptors dropped to fit the budget

    def to_dict(self) -> dict:
        return {
            "descriptors": list(self.descriptors),
            "dropped": list(self.dropped),
            "description": self.description,
            "tokens": self.tokens,
            "raw_answers": list(self.raw_answers),
        }


@dataclass
class ClassEntry:
    """One class: its descriptors (kept, in rank order), the description, and how it came about."""

    name: str
    descriptors: list[str]
    description: str
    tokens: int
    raw_answers: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # descriptors dropped to fit the budget
    negative: NegativeEntry | None = None
    variants: list[str] = field(default_factory=list)  # full descriptions, one per answer, same budget

    def to_dict(self) -> dict:
        """The stored form; "negative" / "variants" only when present, so a v1 entry's dict is unchanged."""
        out: dict = {
            "name": self.name,
            "descriptors": list(self.descriptors),
            "dropped": list(self.dropped),
            "description": self.description,
            "tokens": self.tokens,
            "raw_answers": list(self.raw_answers),
        }
        if self.negative is not None:
            out["negative"] = self.negative.to_dict()
        if self.variants:
            out["variants"] = list(self.variants)
        return out


def mixed_extras_problem(classes: list[ClassEntry]) -> str:
    """"" when negatives and variants are each on every class or on none; else a line saying which lack them."""
    for what, has in (("negative descriptions", lambda e: e.negative is not None),
                      ("variants", lambda e: bool(e.variants))):
        lacking = [entry.name for entry in classes if not has(entry)]
        if lacking and len(lacking) < len(classes):
            shown = ", ".join(repr(name) for name in lacking[:4]) + (", ..." if len(lacking) > 4 else "")
            return (f"{len(classes) - len(lacking)} of {len(classes)} classes have {what} but {shown} "
                    f"{'has' if len(lacking) == 1 else 'have'} none: give them to every class or to none")
    return ""


@dataclass
class DescriptorSet:
    """A stored version of a class set's descriptions. `classes` is in label order."""

    version: int
    class_set: str
    classes: list[ClassEntry]
    provenance: dict
    content_hash: str = ""  # identity: what trains (compute_hash)
    n_ctx: int = 8
    format_version: int = FORMAT_VERSION  # a loaded file keeps its own, so its record hash still verifies
    record_hash: str = ""  # the stored record's hash (compute_record_hash); a version 1/2 file's `content_hash`
    path: Path | None = field(default=None, compare=False)
    shipped: bool = field(default=False, compare=False)

    @property
    def set_id(self) -> str:
        return f"{self.class_set}/v{self.version}"

    @property
    def class_names(self) -> list[str]:
        return [entry.name for entry in self.classes]

    @property
    def known_hashes(self) -> tuple[str, ...]:
        """Every hash this set has been identified by: its content hash and, for a version 1/2 file,
        the one it stored then (what runs and checkpoints made before format 3 recorded)."""
        if self.format_version < _RECORD_HASH_SINCE and self.record_hash and self.record_hash != self.content_hash:
            return (self.content_hash, self.record_hash)
        return (self.content_hash,)

    @property
    def descriptions(self) -> list[str]:
        return [entry.description for entry in self.classes]

    @property
    def has_negatives(self) -> bool:
        """Every class has a negative description."""
        return bool(self.classes) and all(entry.negative is not None for entry in self.classes)

    @property
    def has_variants(self) -> bool:
        """Every class has at least one variant."""
        return bool(self.classes) and all(entry.variants for entry in self.classes)

    @property
    def negative_descriptions(self) -> list[str]:
        """Each class's negative description, in label order; SetContentError when the set has none."""
        if not self.has_negatives:
            raise SetContentError(
                f"set {self.set_id} has no negative descriptions: generate one with `promptkit generate --negatives`"
            )
        return [entry.negative.description for entry in self.classes if entry.negative is not None]

    @property
    def variant_descriptions(self) -> list[list[str]]:
        """Each class's variants (one list per class, in label order); SetContentError when the set has none."""
        if not self.has_variants:
            raise SetContentError(
                f"set {self.set_id} has no variants (several descriptions per class): generate one with "
                "`promptkit generate --samples N --variants` (N >= 2)"
            )
        return [list(entry.variants) for entry in self.classes]

    def trained_content(self) -> dict:
        """What the content hash covers: the texts that train, normalised, in label order."""
        classes = []
        for entry in self.classes:
            item: dict = {"name": normalise_text(entry.name), "description": normalise_text(entry.description)}
            if entry.negative is not None:
                item["negative"] = normalise_text(entry.negative.description)
            if entry.variants:
                item["variants"] = [normalise_text(variant) for variant in entry.variants]
            classes.append(item)
        return {"identity": "promptkit-texts-1", "classes": classes}

    def compute_hash(self) -> str:
        """The content hash (identity): sha256 of the normalised texts that train."""
        return canonical_sha256(self.trained_content())

    def hashed_content(self) -> dict:
        """What the record hash covers: everything but the version number and the hashes."""
        return {
            "format": FORMAT,
            "format_version": self.format_version,
            "class_set": self.class_set,
            "n_ctx": self.n_ctx,
            "classes": [entry.to_dict() for entry in self.classes],
            "provenance": self.provenance,
        }

    def compute_record_hash(self) -> str:
        """The record hash: sha256 of the whole stored record (a version 1/2 file's `content_hash`)."""
        return canonical_sha256(self.hashed_content())

    def to_dict(self) -> dict:
        """The stored form; a version 1/2 set keeps its one stored hash under `content_hash`."""
        content = self.hashed_content()
        hashes = {"content_hash": self.content_hash, "record_hash": self.record_hash}
        if self.format_version < _RECORD_HASH_SINCE:
            hashes = {"content_hash": self.record_hash}
        return {
            "format": content["format"],
            "format_version": content["format_version"],
            "class_set": self.class_set,
            "version": self.version,
            "set_id": self.set_id,
            "n_ctx": self.n_ctx,
            **hashes,
            "provenance": self.provenance,
            "classes": content["classes"],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


def set_from_dict(data: object, where: str, verify_hash: bool = True) -> DescriptorSet:
    """Validate a parsed version file; CorruptSetError naming `where` on any problem."""
    if not isinstance(data, dict):
        raise CorruptSetError(f"{where}: expected a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise CorruptSetError(f"{where}: not a promptkit descriptor set (format is {data.get('format')!r})")
    format_version = data.get("format_version")
    if type(format_version) is not int or format_version not in SUPPORTED_FORMAT_VERSIONS:
        raise CorruptSetError(f"{where}: unsupported format_version {format_version!r}")
    version = _field(data, "version", int, where)
    n_ctx = _field(data, "n_ctx", int, where)
    if version < 1 or n_ctx < 0:
        raise CorruptSetError(f"{where}: bad version {version!r} or n_ctx {n_ctx!r}")
    classes_raw = _field(data, "classes", list, where)
    if not classes_raw:
        raise CorruptSetError(f"{where}: the set has no classes")
    result = DescriptorSet(
        version=version,
        class_set=_field(data, "class_set", str, where),
        classes=[_entry_from_dict(item, f"{where}: class {i}", format_version) for i, item in enumerate(classes_raw)],
        provenance=_field(data, "provenance", dict, where),
        n_ctx=n_ctx,
        format_version=format_version,
    )
    stored = _field(data, "content_hash", str, where)
    if format_version < _RECORD_HASH_SINCE:  # one hash, of the whole record
        result.record_hash = stored
    else:
        result.record_hash = _field(data, "record_hash", str, where)
    result.content_hash = result.compute_hash()
    mixed = mixed_extras_problem(result.classes)
    if mixed:
        raise CorruptSetError(f"{where}: {mixed}")
    changed = result.compute_record_hash() != result.record_hash
    if format_version >= _RECORD_HASH_SINCE:
        changed = changed or stored != result.content_hash
    if verify_hash and changed:
        raise CorruptSetError(
            f"{where} was modified after it was written (content hash mismatch); versions are immutable: "
            "restore the file, or store your edit as a new version with `promptkit add`"
        )
    return result


def normalise_text(text: str) -> str:
    """A text as it trains: Unicode NFC, runs of whitespace as one space, lower case (CLIP's tokenizer
    lower-cases and collapses whitespace too)."""
    return " ".join(unicodedata.normalize("NFC", text).split()).lower()


def canonical_sha256(content: object) -> str:
    """`sha256:` of `content` as canonical JSON (sorted keys, no spaces): the hash of every stored set."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _entry_from_dict(item: object, where: str, format_version: int) -> ClassEntry:
    if not isinstance(item, dict):
        raise CorruptSetError(f"{where}: expected an object, got {type(item).__name__}")
    newer = [key for key in _V2_KEYS if key in item]
    if format_version == 1 and newer:
        raise CorruptSetError(
            f"{where}: has {newer[0]!r}, which a format_version 1 set cannot hold "
            "(negative descriptions and variants need format_version 2): restore the file"
        )
    negative = item.get("negative")
    if negative is not None:
        negative = _negative_from_dict(negative, f"{where}: negative")
    variants = _strings(item, "variants", where)
    if "variants" in item and not variants:
        raise CorruptSetError(f"{where}: field 'variants' is empty (leave it out when there are none)")
    return ClassEntry(
        name=_field(item, "name", str, where),
        descriptors=_strings(item, "descriptors", where),
        dropped=_strings(item, "dropped", where),
        description=_field(item, "description", str, where),
        tokens=_field(item, "tokens", int, where),
        raw_answers=_strings(item, "raw_answers", where),
        negative=negative,
        variants=variants,
    )


def _negative_from_dict(item: object, where: str) -> NegativeEntry:
    if not isinstance(item, dict):
        raise CorruptSetError(f"{where}: expected an object, got {type(item).__name__}")
    return NegativeEntry(
        descriptors=_strings(item, "descriptors", where),
        dropped=_strings(item, "dropped", where),
        description=_field(item, "description", str, where),
        tokens=_field(item, "tokens", int, where),
        raw_answers=_strings(item, "raw_answers", where),
    )


def _field(data: dict, key: str, kind: type, where: str):
    value = data.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CorruptSetError(f"{where}: field {key!r} must be {kind.__name__}, got {value!r:.60}")
    return value


def _strings(data: dict, key: str, where: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CorruptSetError(f"{where}: field {key!r} must be a list of strings")
    return list(value)
