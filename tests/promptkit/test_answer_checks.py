"""What `promptkit generate` refuses or drops from the LLM's answers (issue #20): negatives that repeat
the positive, negatives phrased as negations, variants all alike, descriptors not about the face.
Against the local fake OpenAI-compatible server."""

from __future__ import annotations

import json

from fake_llm import llm_server, run_cli  # noqa: F401  (fixture import)

from promptkit.store import Store

POSITIVE = "1. Raised cheeks\n2. Wide smile\n3. Crow's feet wrinkles\n"


def _generate(server, store, *extra, classes="joy,calm"):
    return run_cli("generate", "--classes", classes, "--model", "fake-llm", "--base-url", server.url,
                   "--store", store, "--json", *extra)


def _refused(result, *fragments):
    assert result.code == 1 and result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    for fragment in fragments:
        assert fragment in result.err, result.err


def test_a_server_that_ignores_the_negation_is_refused(llm_server, tmp_path):
    llm_server.answer = lambda model, prompt: POSITIVE  # the same list for "what does it not show?"
    result = _generate(llm_server, tmp_path, "--negatives")
    _refused(result, "negative answer for class 'joy' repeats its own description (3 of 3 features",
             "--negative-template", "also no usable text for 1 other class(es): 'calm'", "nothing was written")
    assert not tmp_path.exists() or not any(tmp_path.rglob("*.json"))


def test_negative_features_that_repeat_the_positive_are_dropped_and_said(llm_server, tmp_path):
    negative = "1. Furrowed brows\n2. Tearful eyes\n3. Wide open smile\n"  # the smile is the positive's
    llm_server.answer = lambda model, prompt: negative if "absent from" in prompt else POSITIVE
    result = _generate(llm_server, tmp_path, "--negatives")
    assert result.code == 0, result.err
    for entry in json.loads(result.out)["classes"]:
        assert entry["negative"]["descriptors"] == ["furrowed brows", "tearful eyes"]
        assert entry["negative"]["description"] == "furrowed brows, tearful eyes."
    assert "note: class 'joy': negative dropped 'wide open smile' (also in its own description)" in result.err
    stored = Store(tmp_path).load("custom/v1")
    assert any("wide open smile" in note for note in stored.provenance["screened"])


def test_negatives_phrased_as_negations_are_read_as_the_absent_features(llm_server, tmp_path):
    negative = "- no furrowed brows\n- not tearful eyes\n- absence of a clenched jaw\n- eyes not narrowed\n"
    llm_server.answer = lambda model, prompt: negative if "absent from" in prompt else POSITIVE
    result = _generate(llm_server, tmp_path, "--negatives")
    assert result.code == 0, result.err
    for entry in json.loads(result.out)["classes"]:
        assert entry["negative"]["descriptors"] == ["furrowed brows", "tearful eyes", "clenched jaw"]
        assert not any(word in entry["negative"]["description"] for word in ("no ", "not ", "absence"))
    assert "read 'no furrowed brows' as 'furrowed brows'" in result.err
    assert "dropped 'eyes not narrowed' (a negation" in result.err


def test_a_negative_of_negations_only_is_refused(llm_server, tmp_path):
    llm_server.answer = lambda model, prompt: (
        "- the cheeks are not raised\n- the lips don't smile" if "absent from" in prompt else POSITIVE)
    _refused(_generate(llm_server, tmp_path, "--negatives"), "no usable descriptor in the LLM negative answer for class",
             "a negation")


def test_identical_variants_are_refused(llm_server, tmp_path):
    llm_server.answer = lambda model, prompt: POSITIVE  # the server ignores --seed and --temperature
    result = _generate(llm_server, tmp_path, "--samples", "3", "--seed", "1", "--variants")
    _refused(result, "the 3 answers for class 'joy' give one distinct variant", "--temperature", "nothing was written")


def test_descriptors_not_about_the_face_are_dropped_and_said(llm_server, tmp_path):
    llm_server.answer = lambda model, prompt: "- a sigh-like exhale\n- raised cheeks\n- clenched fists\n- smirk\n"
    result = _generate(llm_server, tmp_path)
    assert result.code == 0, result.err
    for entry in json.loads(result.out)["classes"]:
        assert entry["descriptors"] == ["raised cheeks", "smirk"] and "exhale" not in entry["description"]
    assert "note: class 'joy': dropped 'a sigh-like exhale' (not about the face)" in result.err
    llm_server.answer = lambda model, prompt: "- a sigh-like exhale\n- slumped posture\n"
    _refused(_generate(llm_server, tmp_path / "other"), "no usable descriptor in the LLM answer for class 'joy'",
             "not about the face")
