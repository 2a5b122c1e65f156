"""Token counting and fitting with the real open_clip tokenizer."""

from __future__ import annotations

import fake_llm  # noqa: F401  (puts the real promptkit first on sys.path)
import pytest

from promptkit.errors import BudgetError
from promptkit.tokens import budget, count_tokens, fit_descriptors, join_descriptors, token_report


def test_count_matches_open_clip_tokenize():
    from open_clip import tokenize

    text = "raised cheeks, crow's feet wrinkles at the outer eye corners, lip corners pulled up."
    ids = tokenize([text])[0]  # (77,) with SOS ... EOS then zero padding
    assert count_tokens(text) == int((ids != 0).sum()) - 2
    assert count_tokens("") == 0


def test_budget():
    assert budget(8) == 67
    assert budget(0) == 75
    for bad in (-1, 75, 80, 2.5, True):
        with pytest.raises(BudgetError):
            budget(bad)


def test_join():
    assert join_descriptors(["raised cheeks", "wide smile."]) == "raised cheeks, wide smile."
    assert join_descriptors([]) == ""


def test_fit_keeps_best_ranked_whole_phrases():
    phrases = [f"descriptor number {word} about the eyes" for word in
               "one two three four five six seven eight nine ten eleven twelve".split()]
    fit = fit_descriptors(phrases, n_ctx=30)
    assert fit.budget == 45
    assert fit.tokens == count_tokens(fit.description) <= 45
    assert fit.kept + fit.dropped == phrases and fit.dropped
    assert fit.description == join_descriptors(fit.kept)
    # maximal: one more descriptor would not have fitted
    assert count_tokens(join_descriptors(phrases[: len(fit.kept) + 1])) > 45


def test_fit_without_drops():
    fit = fit_descriptors(["raised cheeks", "wide smile"], n_ctx=8)
    assert fit.dropped == [] and fit.description == "raised cheeks, wide smile."


def test_a_descriptor_longer_than_the_budget_is_an_error_not_a_cut():
    long = "eyebrows raised very high and pulled together with deep horizontal wrinkles across the whole forehead"
    with pytest.raises(BudgetError, match="on its own"):
        fit_descriptors(["smile", long], n_ctx=70, label="fear")


def test_token_report_at_a_smaller_budget():
    class Entry:
        name = "joy"
        descriptors = ["raised cheeks", "wide open smile", "crinkled eyes"]
        dropped = ["dimples"]
        description = join_descriptors(descriptors)

    [row] = token_report([Entry()], n_ctx=69)  # budget 6
    assert row.budget == 6 and not row.fits
    assert row.would_drop and row.would_drop == Entry.descriptors[-len(row.would_drop):]
    assert row.dropped == ["dimples"]
    [ok] = token_report([Entry()], n_ctx=8)
    assert ok.fits and ok.would_drop == []


def test_token_report_covers_negatives_and_variants_of_the_shipped_v2(tmp_path):
    from promptkit.store import Store

    ds = Store(tmp_path).load("dfew/v2")
    rows = token_report(ds.classes, n_ctx=40)  # budget 35
    names = [row.name for row in rows]
    assert names[:5] == ["happiness", "happiness (negative)", "happiness (variant 1)", "happiness (variant 2)",
                         "happiness (variant 3)"]
    assert len(rows) == 7 * 5
    negative = rows[1]
    assert negative.tokens == count_tokens(ds.classes[0].negative.description) and negative.fits
    assert not rows[0].fits and rows[0].would_drop  # the description is refittable from its descriptors
