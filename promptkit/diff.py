"""Per-class differences between two descriptor sets (compared by label index)."""

from __future__ import annotations

from dataclasses import dataclass, field

from promptkit.sets import DescriptorSet


@dataclass(frozen=True)
class ClassChange:
    """How one label differs between set A and set B (None: the label is missing on that side)."""

    label: int
    name_a: str | None
    name_b: str | None
    added: list[str]
    removed: list[str]
    description_a: str | None
    description_b: str | None
    tokens_a: int | None
    tokens_b: int | None
    negative_a: str | None = None  # the negative description, None when that side has none
    negative_b: str | None = None
    variants_a: list[str] = field(default_factory=list)
    variants_b: list[str] = field(default_factory=list)

    @property
    def renamed(self) -> bool:
        return self.name_a != self.name_b

    @property
    def extras_changed(self) -> bool:
        """The negative description or the variants differ."""
        return self.negative_a != self.negative_b or self.variants_a != self.variants_b

    @property
    def changed(self) -> bool:
        return (self.renamed or bool(self.added or self.removed) or self.description_a != self.description_b
                or self.extras_changed)


def diff_sets(a: DescriptorSet, b: DescriptorSet) -> list[ClassChange]:
    """One ClassChange per label index present in either set, in label order."""
    changes = []
    for label in range(max(len(a.classes), len(b.classes))):
        left = a.classes[label] if label < len(a.classes) else None
        right = b.classes[label] if label < len(b.classes) else None
        before = list(left.descriptors) if left else []
        after = list(right.descriptors) if right else []
        changes.append(ClassChange(
            label=label,
            name_a=left.name if left else None,
            name_b=right.name if right else None,
            added=[d for d in after if d not in before],
            removed=[d for d in before if d not in after],
            description_a=left.description if left else None,
            description_b=right.description if right else None,
            tokens_a=left.tokens if left else None,
            tokens_b=right.tokens if right else None,
            negative_a=left.negative.description if left and left.negative else None,
            negative_b=right.negative.description if right and right.negative else None,
            variants_a=list(left.variants) if left else [],
            variants_b=list(right.variants) if right else [],
        ))
    return changes
