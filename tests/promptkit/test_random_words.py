"""WaffleCLIP's random-words control: same BPE token count, seeded, vocabulary words only."""

from __future__ import annotations

from promptkit.random_words import random_words_like, vocabulary
from promptkit.tokens import count_tokens

TEXTS = ("a smiling face with cheeks raised and the lip corners pulled up.", "frown.", "")


def test_same_token_length_and_vocabulary_words():
    out = random_words_like(TEXTS, seed=1)
    assert [count_tokens(t) for t in out] == [count_tokens(t) for t in TEXTS]
    words = set(vocabulary())
    assert all(w in words for text in out for w in text.split())
    assert out[0] != TEXTS[0] and out[2] == ""


def test_seeded():
    assert random_words_like(TEXTS, seed=1) == random_words_like(TEXTS, seed=1)
    assert random_words_like(TEXTS, seed=1) != random_words_like(TEXTS, seed=2)
