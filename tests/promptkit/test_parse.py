"""Table-driven parser tests on answers shaped like real chat-model output."""

from __future__ import annotations

import fake_llm  # noqa: F401  (puts the real promptkit first on sys.path)
import pytest

from promptkit.parse import parse_answer, rank_descriptors

CASES = [
    (
        "numbered-bold-with-chatter",
        "Sure! Here are some useful visual features for recognizing the facial expression of happiness:\n\n"
        "1. **Raised cheeks**: The cheeks are lifted, often creating a rounded appearance.\n"
        "2. **Crow's feet wrinkles**: Wrinkles at the outer corners of the eyes (AU6).\n"
        "3. **Upturned mouth corners**: The corners of the lips are pulled up into a smile.\n"
        "4. **Visible teeth** - The mouth may open, showing the upper teeth.\n\n"
        "These features together create the look of a genuine smile. Let me know if you need more detail!",
        ["raised cheeks", "crow's feet wrinkles", "upturned mouth corners", "visible teeth"],
    ),
    (
        "plain-bullets",
        "- furrowed brows\n- narrowed eyes\n- tightly pressed lips\n* flared nostrils\n",
        ["furrowed brows", "narrowed eyes", "tightly pressed lips", "flared nostrils"],
    ),
    (
        "markdown-headers",
        "### Eyebrows\n- Lowered and drawn together\n### Eyes\n- Tense lower eyelids\n### Mouth\n- Corners pulled down",
        ["eyebrows lowered and drawn together", "tense lower eyelids", "mouth corners pulled down"],
    ),
    (
        "run-on-sentence",
        "Some useful visual features for facial expressions of sadness include drooping upper eyelids, "
        "a downturned mouth, raised inner corners of the eyebrows, and a lack of focus in the eyes.",
        ["drooping upper eyelids", "a downturned mouth", "raised inner corners of the eyebrows",
         "a lack of focus in the eyes"],
    ),
    (
        "continuation-of-the-prompt",
        " raised eyebrows, widened eyes, an open mouth, and a dropped jaw.",
        ["raised eyebrows", "widened eyes", "an open mouth", "a dropped jaw"],
    ),
    (
        "bold-labels-with-nested-bullets",
        "Certainly! Facial expressions of fear can be identified by:\n\n**Eyes:**\n"
        "- Wide open, showing the whites above the iris\n- Raised upper eyelids\n\n**Mouth:**\n"
        "  - Lips stretched horizontally\n  - Slightly open\n\nI hope this helps!",
        ["eyes wide open, showing the whites above the iris", "raised upper eyelids",
         "lips stretched horizontally", "mouth slightly open"],
    ),
    (
        "inline-numbers",
        "1) clenched jaw 2) narrowed eyes 3) flared nostrils",
        ["clenched jaw", "narrowed eyes", "flared nostrils"],
    ),
    (
        "one-cue-per-line",
        "Raised upper lip\nWrinkled nose\nLowered brows\nHead turned away",
        ["raised upper lip", "wrinkled nose", "lowered brows", "head turned away"],
    ),
    (
        "numbered-with-long-explanations",
        "Here's what to look for:\n"
        "1. Eyes: narrowed, with crow's feet\n"
        "2. Mouth: corners pulled up into a broad smile that shows teeth and widens the face a lot\n"
        "3. The corners of the mouth are pulled back and up, producing a smile that often reveals the teeth\n"
        "Overall, these cues signal joy.",
        ["eyes narrowed, with crow's feet", "mouth corners pulled up into a broad smile",
         "the corners of the mouth are pulled back and up"],
    ),
    (
        "echoed-answer-prefix-and-duplicates",
        "A: Some useful visual features for facial expressions of contempt include:\n"
        "- a one-sided smirk\n- One-sided smirk\n- raised chin\n- eye roll.",
        ["a one-sided smirk", "raised chin", "eye roll"],
    ),
    (
        "refusal",
        "I'm sorry, but I can't help with that request. Let me know if there is anything else!",
        [],
    ),
    ("empty", "", []),
    (
        "sentences-without-list",
        "The eyebrows are pulled down and together. The eyes glare. Feel free to ask for more examples.",
        ["the eyebrows are pulled down and together", "the eyes glare"],
    ),
]


@pytest.mark.parametrize(("answer", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_answer(answer, expected):
    assert parse_answer(answer) == expected


@pytest.mark.parametrize("answer", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_no_chatter_survives(answer):
    for phrase in parse_answer(answer):
        lowered = phrase.lower()
        assert not lowered.startswith(("sure", "here", "certainly", "let me", "i hope", "overall", "these"))
        assert "**" not in phrase and not phrase.endswith((".", ":", ","))


def test_rank_by_frequency_then_first_appearance():
    samples = [["smile", "raised cheeks"], ["Raised cheeks", "open mouth"], ["open mouth", "raised cheeks", "dimples"]]
    assert rank_descriptors(samples) == ["raised cheeks", "open mouth", "smile", "dimples"]


def test_rank_counts_a_descriptor_once_per_sample():
    assert rank_descriptors([["a b", "A B", "c"], ["c"]]) == ["c", "a b"]
