"""Checks on what an LLM answered and on a set's extra texts: what a newcomer would not spot by eye.

- A descriptor must be about the face: it names a face part or a facial movement ("a sigh-like
  exhale" does not).
- A negative description names features the expression does not show. An answer that phrases them
  as negations ("no smile, not raised cheeks") is read without the leading negation ("smile",
  "raised cheeks"); a phrase with a negation inside ("eyes not narrowed") is dropped, since turning
  it round would be a guess.
- A negative must not repeat the class's own description: a negative descriptor that overlaps one of
  the class's descriptors is dropped, and when more than half of them do, the whole negative is
  refused (the server ignored the negation).
- Variants must differ: a variant that is a near-duplicate of an earlier one is dropped (the server
  ignored --seed / --temperature).

`set_text_problems` runs the same checks over a stored set, for the trainer to warn before it trains
on its negatives or variants.
"""

from __future__ import annotations

import re
from typing import Sequence

from promptkit.parse import about_face
from promptkit.tokens import shorten

REPEAT_SHARE = 0.5  # a negative is refused when more than this share of its features repeat the positive
OVERLAP_JACCARD = 0.6  # two descriptors overlap at this share of shared content words (or one inside the other)
DUPLICATE_JACCARD = 0.85  # two full descriptions are near-duplicates at this share of shared content words

_STOP_WORDS = frozenset(
    "a an the and or of with at in on to into from by its their is are be slightly very somewhat".split()
)
_LEADING_NEGATION = re.compile(
    r"^(?:no signs? of|no trace of|none of|lack(?:ing)? of|(?:an |the )?absence of|free of|without|never|not|nor|no)"
    r"\s+(?:(?:any|visible|a|an|the)\s+)?",
    re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(?:no|not|never|without|nor|none|lack|lacking|absence|absent)\b|n['\u2019]t\b", re.IGNORECASE)


def content_words(text: str) -> frozenset[str]:
    """The content words of a phrase, lower case, without stop words, possessives or a plural -s."""
    words = set()
    for word in re.findall(r"[a-z]+(?:['\u2019][a-z]+)?", text.lower()):
        word = re.sub(r"['\u2019]s$", "", word)
        if word in _STOP_WORDS:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.add(word)
    return frozenset(words)


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def overlaps(a: str, b: str) -> bool:
    """Two descriptors name the same feature: the same content words, one's words inside the other's
    ("open mouth" / "wide open mouth"), or at least OVERLAP_JACCARD of them shared."""
    wa, wb = content_words(a), content_words(b)
    if not wa or not wb:
        return False
    return wa <= wb or wb <= wa or _jaccard(wa, wb) >= OVERLAP_JACCARD


def near_duplicates(a: str, b: str) -> bool:
    """Two full descriptions say the same: at least DUPLICATE_JACCARD of their content words shared."""
    return _jaccard(content_words(a), content_words(b)) >= DUPLICATE_JACCARD


def unnegated(phrase: str) -> str | None:
    """A negative descriptor as the feature it names: the leading negation removed ("no smile" ->
    "smile"); None when a negation remains inside ("eyes not narrowed"), or nothing is left."""
    feature = _LEADING_NEGATION.sub("", phrase.strip(), count=1).strip()
    if not feature or _NEGATION.search(feature):
        return None
    return feature


def screen_descriptors(descriptors: Sequence[str], negative: bool = False) -> tuple[list[str], list[str]]:
    """(kept descriptors, notes on the others): each must be about the face; for a `negative` answer
    a leading negation is removed (noted) and a phrase with a negation inside is dropped."""
    kept: list[str] = []
    notes: list[str] = []
    for phrase in descriptors:
        feature = phrase
        if negative:
            feature = unnegated(phrase)
            if feature is None:
                notes.append(f"dropped {phrase!r} (a negation: name the feature itself)")
                continue
            if feature != phrase:
                notes.append(f"read {phrase!r} as {feature!r} (a negative names the absent feature, not its negation)")
        if not about_face(feature):
            notes.append(f"dropped {feature!r} (not about the face)")
            continue
        kept.append(feature)
    return kept, notes


def repeats_of(negatives: Sequence[str], positives: Sequence[str]) -> list[str]:
    """The negative descriptors that overlap one of the positive ones."""
    return [phrase for phrase in negatives if any(overlaps(phrase, other) for other in positives)]


def repeats_too_much(repeated: Sequence[str], negatives: Sequence[str]) -> bool:
    return bool(negatives) and len(repeated) > REPEAT_SHARE * len(negatives)


def distinct_texts(texts: Sequence[str]) -> tuple[list[str], list[str]]:
    """(texts kept in order, texts dropped as near-duplicates of an earlier kept one)."""
    kept: list[str] = []
    dropped: list[str] = []
    for text in texts:
        (dropped if any(near_duplicates(text, other) for other in kept) else kept).append(text)
    return kept, dropped


def set_text_problems(ds, negatives: bool = False, variants: bool = False) -> list[str]:
    """One line per kind of problem in a DescriptorSet's negatives (`negatives`) or variants
    (`variants`): negatives that repeat their class's description, negatives phrased as negations,
    near-duplicate variants. [] when there is none (or the set lacks them)."""
    repeating, negated, duplicated = [], [], []
    for entry in ds.classes:
        if negatives and entry.negative is not None:
            features = _features(entry.negative.descriptors, entry.negative.description)
            repeated = repeats_of(features, _features(entry.descriptors, entry.description))
            if repeats_too_much(repeated, features):
                repeating.append(f"{entry.name!r} ({len(repeated)} of {len(features)}, e.g. {shorten(repeated[0], 40)!r})")
            phrased = [phrase for phrase in features if _NEGATION.search(phrase)]
            if phrased:
                negated.append(f"{entry.name!r} ({shorten(phrased[0], 40)!r})")
        if variants and entry.variants:
            kept, _ = distinct_texts(entry.variants)
            if len(kept) < len(entry.variants):
                duplicated.append(f"{entry.name!r} ({len(kept)} distinct of {len(entry.variants)})")
    lines = []
    if repeating:
        lines.append(f"set {ds.set_id}: the negative descriptions of {_classes(repeating)} repeat their own "
                     "descriptions, so --negatives pushes each class away from its own features")
    if negated:
        lines.append(f"set {ds.set_id}: the negative descriptions of {_classes(negated)} are phrased as "
                     "negations; a negative description names the features the expression does not show")
    if duplicated:
        lines.append(f"set {ds.set_id}: the variants of {_classes(duplicated)} are near-duplicates, so "
                     "--multi-descriptions adds little")
    return lines


def _features(descriptors: Sequence[str], description: str) -> list[str]:
    """A text's features: its descriptors, else its description split at commas and semicolons."""
    if descriptors:
        return list(descriptors)
    return [part.strip(" .") for part in re.split(r"[,;]", description) if part.strip(" .")]


def _classes(items: list[str]) -> str:
    shown = ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")
    return f"{len(items)} class(es): {shown}"
