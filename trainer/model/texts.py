"""ClassTexts: the text each class is prompted with, and where it came from.

Three sources, one type: a promptkit descriptor set (the paper's LLM descriptions), bare class
names (the authors' `class_names` variant, "happiness."), or a manual Jinja2 template rendered
per class ("an expression of {{ class_name }}."). Tokenisation is promptkit.tokens' (CLIP's BPE).
A descriptor set may add one negative description per class (`--negatives`) and several
descriptions per class (`--multi-descriptions`); they travel here too, so a checkpoint can rebuild
its prompts from its own texts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

from promptkit.errors import PromptkitError, TemplateError
from promptkit.templates import render_classes

from trainer.errors import TextsError


@dataclass(frozen=True)
class ClassTexts:
    """One text per class, in label order. `content_hash` (sha256:...): for texts built from a
    descriptor set, that set's content hash (so checkpoints name the set); otherwise the hash of the
    class names and texts (`texts_hash`). `negatives`: one negative description per class, or None;
    `variants`: per class, several descriptions (at least one each), or None."""

    classes: tuple[str, ...]
    texts: tuple[str, ...]
    source: str = "manual"
    content_hash: str | None = field(default=None)
    negatives: tuple[str, ...] | None = None
    variants: tuple[tuple[str, ...], ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "texts", tuple(self.texts))
        if self.negatives is not None:
            object.__setattr__(self, "negatives", tuple(self.negatives))
        if self.variants is not None:
            object.__setattr__(self, "variants", tuple(tuple(v) for v in self.variants))
        if not self.classes:
            raise TextsError("class texts need at least one class, got none")
        if len(self.classes) != len(self.texts):
            raise TextsError(
                f"got {len(self.classes)} class names but {len(self.texts)} texts; give one text per class"
            )
        for name, text in zip(self.classes, self.texts):
            if not isinstance(name, str) or not name.strip():
                raise TextsError(f"class names must be non-empty strings, got {name!r}")
            if not isinstance(text, str) or not text.strip():
                raise TextsError(f"the text for class {name!r} is empty; give every class a text")
        if len(set(self.classes)) != len(self.classes):
            raise TextsError(f"class names must be unique, got {list(self.classes)}")
        self._check_extras()
        if self.content_hash is None:
            object.__setattr__(self, "content_hash", texts_hash(self.classes, self.texts, self.negatives, self.variants))

    def _check_extras(self) -> None:
        n = len(self.classes)
        if self.negatives is not None:
            if len(self.negatives) != n:
                raise TextsError(f"got {len(self.negatives)} negative descriptions for {n} classes; give one per class")
            for name, text in zip(self.classes, self.negatives):
                if not isinstance(text, str) or not text.strip():
                    raise TextsError(f"the negative description of class {name!r} is empty")
        if self.variants is not None:
            if len(self.variants) != n:
                raise TextsError(f"got descriptions for {len(self.variants)} classes but there are {n} classes")
            for name, texts in zip(self.classes, self.variants):
                if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
                    raise TextsError(f"class {name!r} needs at least one non-empty description among its several descriptions")

    def reordered(self, order: Sequence[int], classes: Sequence[str]) -> "ClassTexts":
        """These texts with class i of the result taken from class order[i] here (named `classes`);
        the content hash is that of the re-ordered texts."""
        def pick(seq):
            return None if seq is None else tuple(seq[i] for i in order)

        return ClassTexts(tuple(classes), pick(self.texts), self.source, None, pick(self.negatives), pick(self.variants))

    def __len__(self) -> int:
        return len(self.classes)

    def check_classes(self, classes: Sequence[str], what: str = "the data") -> None:
        """Raise TextsError unless these texts are for exactly `classes`, in that label order."""
        want = tuple(classes)
        if len(want) != len(self.classes):
            raise TextsError(
                f"the class texts ({self.source}) have {len(self.classes)} classes but {what} has {len(want)}; "
                "use a descriptor set made for these classes"
            )
        if want != self.classes:
            diff = next(i for i, (a, b) in enumerate(zip(want, self.classes)) if a != b)
            raise TextsError(
                f"the class texts ({self.source}) put {self.classes[diff]!r} at label {diff} but {what} has "
                f"{want[diff]!r}; the label orders must match"
            )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "classes": list(self.classes),
            "texts": list(self.texts),
            "source": self.source,
            "content_hash": self.content_hash,
        }
        if self.negatives is not None:
            out["negatives"] = list(self.negatives)
        if self.variants is not None:
            out["variants"] = [list(v) for v in self.variants]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ClassTexts":
        try:
            return cls(data["classes"], data["texts"], data.get("source", "manual"), data.get("content_hash"),
                       data.get("negatives"), data.get("variants"))
        except (KeyError, TypeError) as exc:
            raise TextsError(f"class texts in the checkpoint are malformed ({exc!r}); re-export the model") from exc

    @classmethod
    def from_descriptor_set(cls, ds: Any, negatives: bool = False, variants: bool = False) -> "ClassTexts":
        """Texts from a promptkit DescriptorSet: each class's joined description, in label order;
        with `negatives` / `variants` also its negative description / its several descriptions
        (a TextsError naming the set and how to make one when the set has none)."""
        entries = list(ds.classes)
        classes = tuple(e.name for e in entries)
        texts = tuple(e.description for e in entries)
        set_id = getattr(ds, "set_id", None) or f"{ds.class_set}/v{ds.version}"
        neg = var = None
        try:  # the set says what it lacks and how to make one (promptkit owns those messages)
            if negatives:
                neg = tuple(ds.negative_descriptions)
            if variants:
                var = tuple(tuple(v) for v in ds.variant_descriptions)
        except PromptkitError as exc:
            raise TextsError(f"{'--negatives' if negatives and neg is None else '--multi-descriptions'}: {exc}") from None
        return cls(classes, texts, f"descriptors:{set_id}", getattr(ds, "content_hash", None), neg, var)

    @classmethod
    def from_class_names(cls, classes: Sequence[str]) -> "ClassTexts":
        """Bare class names, written as the authors did: "happiness." (name and a full stop)."""
        names = tuple(classes)
        return cls(names, tuple(f"{n.replace('_', ' ')}." for n in names), "class_names")

    @classmethod
    def from_template(cls, classes: Sequence[str], template: str) -> "ClassTexts":
        """Render a manual Jinja2 template once per class (variables: class_name, index).

        `template` is a shipped template name, a path to a .j2 file (both via promptkit), or an
        inline template string containing `{{`.
        """
        names = tuple(classes)
        try:
            texts = render_classes(template, names)
        except TemplateError as exc:
            if "{{" not in template:
                raise
            raise TextsError(str(exc)) from exc  # an inline template is part of the class texts
        return cls(names, tuple(texts), f"template:{template}")


def texts_hash(classes: Sequence[str], texts: Sequence[str], negatives: Sequence[str] | None = None,
               variants: Sequence[Sequence[str]] | None = None) -> str:
    """sha256 of canonical JSON of the class names and texts (and the negatives / variants when given)."""
    content: dict[str, Any] = {"classes": list(classes), "texts": list(texts)}
    if negatives is not None:
        content["negatives"] = list(negatives)
    if variants is not None:
        content["variants"] = [list(v) for v in variants]
    blob = json.dumps(content, sort_keys=True, ensure_ascii=False)
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()
