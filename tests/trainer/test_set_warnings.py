"""`trainer run --negatives / --multi-descriptions` says when the set's negatives repeat its descriptions
or its variants are near-duplicates (issue #20): it trains, but not without a word."""

from __future__ import annotations

import logging

from cli_runner import trainer_cli as cli

from promptkit.sets import ClassEntry, NegativeEntry
from promptkit.store import Store


def _run(clips, capsys, tmp_path, store, *extra):
    train, test = clips
    return cli(capsys, "run", "--train-list", train, "--test-list", test, "--epochs", 1, "--batch", 7, "--frames", 4,
               "--workers", 0, "--device", "cpu", "--quiet", "--out", tmp_path / "run", "--store", store,
               "--descriptions", "dfew/v3", *extra)


def test_a_set_whose_negatives_repeat_it_and_whose_variants_are_alike_is_said(clips, capsys, tmp_path, caplog):
    store = Store(tmp_path / "store")
    shipped = store.load("dfew/v1")
    entries = [ClassEntry(e.name, list(e.descriptors), e.description, 0,
                          negative=NegativeEntry(list(e.descriptors), e.description, 0),  # the server ignored "not"
                          variants=[e.description, e.description.upper(), e.description + " "])
               for e in shipped.classes]
    store.add("dfew", entries, {"source": "test"}, 8)
    with caplog.at_level(logging.WARNING):
        code, _, err = _run(clips, capsys, tmp_path, store.root, "--negatives", "--multi-descriptions")
    assert code == 0, err
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "set dfew/v3" in r.getMessage()]
    assert len(said) == 3, said  # repeats; neutral's copied "relaxed brow without wrinkles" reads as a negation; alike
    assert "negative descriptions of 7 class(es): 'happiness' (7 of 7" in said[0] and "repeat their own" in said[0]
    assert "class(es): 'neutral' ('relaxed brow without wrinkles')" in said[1] and "negations" in said[1]
    assert "variants of 7 class(es): 'happiness' (1 distinct of 3)" in said[2] and "near-duplicates" in said[2]
    assert all(len(line) < 400 for line in said)


def test_the_shipped_set_with_negatives_and_variants_has_nothing_to_say():
    from promptkit.quality import set_text_problems

    assert set_text_problems(Store("unused").load("dfew/v2"), negatives=True, variants=True) == []
