"""Per-class differences between two descriptor sets (compared by label index)."""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def renamed(self) -> bool:
        return self.name_a != self.name_b

    @property
    def changed(self) -> bool:
        return self.renamed or bool(self.added or self.removed) or self.description_a != self.description_b


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
        ))
    return changes
