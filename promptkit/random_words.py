"""The random-words control of WaffleCLIP (Roth et al., "Waffling around for Performance: Visual
Classification with Random Words and Broad Concepts", ICCV 2023): each class description is
replaced by random words from CLIP's vocabulary, with as many BPE tokens as the description had.

If learned descriptions beat this control, their content matters; if not, the gain came from the
longer prompt alone. The words are a pure function of (seed, class texts): words are drawn in
order from a `random.Random` seeded with the seed, so the same run gets the same control again.
"""

from __future__ import annotations

import functools
import random
from typing import Sequence

from promptkit.tokens import clip_tokenizer, count_tokens, encode_text

NAME = "random_words"


@functools.lru_cache(maxsize=1)
def vocabulary() -> tuple[str, ...]:
    """Whole words of CLIP's BPE vocabulary: lower-case ASCII letters, 3 or more, sorted."""
    words = (token[: -len("</w>")] for token in clip_tokenizer().encoder if token.endswith("</w>"))
    return tuple(sorted(w for w in words if len(w) >= 3 and w.isascii() and w.isalpha()))


def random_words_like(texts: Sequence[str], seed: int) -> tuple[str, ...]:
    """One text of random vocabulary words per text in `texts`, each with the same BPE token count.

    Only words that are one BPE token on their own are used, so n words are n tokens.
    """
    rng = random.Random(f"{NAME}:{int(seed)}")
    vocab = vocabulary()
    out = []
    for text in texts:
        words: list[str] = []
        while len(words) < count_tokens(text):
            word = rng.choice(vocab)
            if len(encode_text(word)) == 1:
                words.append(word)
        out.append(" ".join(words))
    return tuple(out)
