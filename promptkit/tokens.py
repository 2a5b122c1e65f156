"""CLIP's text rules, owned here: the tokenizer, the special ids, the 77-token budget, fitting.

A DFER-CLIP prompt is `[SOS] [ctx_1 .. ctx_M] [description] [EOS]` in CLIP's 77-token context, so
a description may use `77 - 2 - M` BPE tokens. Fitting never cuts inside a descriptor: the lowest
ranked descriptors are dropped whole, and every drop is reported. The trainer's prompt learner uses
the same tokenizer, ids and budget (`encode_text`, `SOS_ID`, `EOS_ID`, `description_budget`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

from promptkit.errors import BudgetError

CONTEXT_LENGTH = 77
SOS_ID = 49406  # CLIP's start of text
EOS_ID = 49407  # CLIP's end of text
SPECIAL_TOKENS = 2  # SOS and EOS
DEFAULT_N_CTX = 8


@functools.lru_cache(maxsize=1)
def clip_tokenizer():
    """open_clip's CLIP BPE tokenizer (its vocabulary ships inside the package); built on first use,
    then shared by promptkit and the trainer."""
    from open_clip.tokenizer import SimpleTokenizer  # heavy (open_clip imports torch): only when needed

    return SimpleTokenizer()


def encode_text(text: str) -> list[int]:
    """BPE ids of `text` without SOS/EOS (CLIP's lower-casing and whitespace clean-up)."""
    return list(clip_tokenizer().encode(text))


def decode_tokens(ids: Sequence[int]) -> str:
    """Readable text for BPE ids: CLIP's decode with the spaces before punctuation removed."""
    raw = clip_tokenizer().decode(list(ids)).strip()
    for mark in (",", ".", ";", ":", "!", "?"):
        raw = raw.replace(f" {mark}", mark)
    return raw


def count_tokens(text: str) -> int:
    """Number of BPE tokens of `text` under open_clip's tokenizer, without SOS/EOS."""
    return len(encode_text(text))


def description_budget(n_ctx: int, context_length: int = CONTEXT_LENGTH) -> int:
    """`context_length - 2 - n_ctx`: the tokens a description may use beside SOS, EOS and the contexts
    (unchecked; `budget` validates it for the promptkit commands)."""
    return context_length - SPECIAL_TOKENS - n_ctx


def budget(n_ctx: int) -> int:
    """Tokens left for a description with `n_ctx` learned context tokens (77 - SOS - EOS - n_ctx)."""
    if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx < 0:
        raise BudgetError(f"number of context tokens must be an integer >= 0, got {n_ctx!r}")
    left = description_budget(n_ctx)
    if left < 1:
        raise BudgetError(
            f"{n_ctx} context tokens leave no room for a description in CLIP's {CONTEXT_LENGTH} tokens: "
            f"use --contexts {CONTEXT_LENGTH - SPECIAL_TOKENS - 1} or fewer"
        )
    return left


def join_descriptors(descriptors: Sequence[str]) -> str:
    """Join descriptor phrases into one description: `raised cheeks, narrowed eyes, a wide smile.`"""
    phrases = [d.strip().rstrip(".;,") for d in descriptors if d.strip()]
    return ", ".join(phrases) + "." if phrases else ""


@dataclass(frozen=True)
class Fit:
    """The result of fitting a ranked descriptor list to a budget."""

    kept: list[str]
    dropped: list[str]
    description: str
    tokens: int
    budget: int


def fit_descriptors(descriptors: Sequence[str], n_ctx: int = DEFAULT_N_CTX, label: str = "") -> Fit:
    """Keep the best-ranked descriptors whose joined description fits `budget(n_ctx)`.

    `descriptors` is in rank order (best first). Drops lowest-ranked ones until the description
    fits. A descriptor that does not fit even alone raises BudgetError (it would have to be cut).
    """
    limit = budget(n_ctx)
    where = f" of class {label!r}" if label else ""
    phrases = [d.strip() for d in descriptors if d.strip()]
    if not phrases:
        raise BudgetError(f"no descriptors{where} to fit")
    for phrase in phrases:
        alone = count_tokens(join_descriptors([phrase]))
        if alone > limit:
            raise BudgetError(
                f"descriptor{where} {shorten(phrase)!r} uses {alone} tokens on its own, over the budget of "
                f"{limit} at --contexts {n_ctx}: shorten it or use fewer contexts"
            )
    kept = list(phrases)
    while True:
        description = join_descriptors(kept)
        used = count_tokens(description)
        if used <= limit:
            return Fit(kept, phrases[len(kept):], description, used, limit)
        kept.pop()


def check_description(description: str, n_ctx: int, label: str = "") -> int:
    """Token count of a finished description; BudgetError if it exceeds the budget."""
    used = count_tokens(description)
    limit = budget(n_ctx)
    if used > limit:
        where = f"class {label!r} " if label else ""
        raise BudgetError(
            f"{where}description uses {used} tokens, over the budget of {limit} at --contexts {n_ctx}: "
            "shorten it (descriptions are never cut silently)"
        )
    return used


def shorten(text: str, limit: int = 60) -> str:
    """`text`, cut to `limit` characters with "..." when longer (for messages and tables)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class TokenRow:
    """One class in `promptkit tokens`: its description's size against the budget at some n_ctx."""

    name: str
    tokens: int
    budget: int
    dropped: list[str]  # dropped when the set was made
    would_drop: list[str]  # further descriptors to drop to fit this budget (refit of the kept ones)
    refit_possible: bool = True

    @property
    def fits(self) -> bool:
        return self.tokens <= self.budget


def token_report(entries: Sequence, n_ctx: int) -> list[TokenRow]:
    """Per-text token use at `n_ctx` for objects with name/description/descriptors/dropped: one row
    per class, plus one per negative description ("name (negative)") and per variant
    ("name (variant k)") where the entries have them."""
    limit = budget(n_ctx)
    rows = []
    for name, description, descriptors, dropped in _texts(entries):
        used = count_tokens(description)
        would_drop: list[str] = []
        refit = True
        if used > limit:
            joined = bool(descriptors) and join_descriptors(descriptors) == description
            try:
                would_drop = fit_descriptors(descriptors, n_ctx, label=name).dropped if joined else []
            except BudgetError:
                joined = False
            refit = joined
        rows.append(TokenRow(name, used, limit, list(dropped), would_drop, refit))
    return rows


def _texts(entries: Sequence):
    """(label, description, descriptors, dropped) of every text the entries hold."""
    for entry in entries:
        yield entry.name, entry.description, list(entry.descriptors), list(entry.dropped)
        negative = getattr(entry, "negative", None)
        if negative is not None:
            yield f"{entry.name} (negative)", negative.description, list(negative.descriptors), list(negative.dropped)
        for number, variant in enumerate(getattr(entry, "variants", None) or [], 1):
            yield f"{entry.name} (variant {number})", variant, [], []
