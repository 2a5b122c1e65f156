"""`promptkit generate --negatives / --variants / several --template`, end to end against the local
fake server (its default answers: class-specific absent features for the negative question, and one
extra feature per sample that differs by seed)."""

from __future__ import annotations

import json

from fake_llm import llm_server, run_cli  # noqa: F401  (fixture import)

from promptkit.store import Store
from promptkit.tokens import budget, count_tokens

BASE = "raised eyebrows, widened eyes, open mouth, tense lips"


def _generate(server, store, *extra, classes="mafw"):
    return run_cli("generate", "--classes", classes, "--model", "fake-llm", "--base-url", server.url,
                   "--store", store, "--json", *extra)


def test_negatives_one_per_class_within_budget_and_shown(llm_server, tmp_path):
    result = _generate(llm_server, tmp_path, "--negatives", "--temperature", "0")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["format_version"] == 3
    by_name = {c["name"]: c for c in data["classes"]}
    assert by_name["happiness"]["negative"]["descriptors"] == [
        "furrowed brows", "downturned mouth corners", "tearful eyes", "clenched jaw"]
    assert by_name["sadness"]["negative"]["description"] == "raised cheeks, wide smile, sparkling eyes, crow's feet wrinkles."
    for entry in data["classes"]:
        negative = entry["negative"]
        assert negative["tokens"] == count_tokens(negative["description"]) <= budget(8)
        assert negative["raw_answers"] and negative["raw_answers"][0].startswith("1. ")
        assert entry["description"] == BASE + "."  # the positive question is unchanged
    negative_prompts = [r["messages"][0]["content"] for r in llm_server.requests if "absent from" in r["messages"][0]["content"]]
    assert len(llm_server.requests) == 22 and len(negative_prompts) == 11
    assert "facial expression of fear?" in " ".join(negative_prompts)
    prov = data["provenance"]
    assert prov["negative_template"] == "llm_negative" and prov["negative_template_sha256"].startswith("sha256:")
    assert prov["template"] == "llm_query" and "templates" not in prov

    loaded = Store(tmp_path).load("mafw/v2")
    assert loaded.has_negatives and loaded.negative_descriptions[0].startswith("furrowed brows")
    shown = run_cli("show", "mafw/v2", "--store", tmp_path)
    assert shown.code == 0, shown.err
    assert "negative" in shown.out and "downturned" in shown.out and "llm_negative" in shown.out
    as_json = json.loads(run_cli("show", "mafw/v2", "--store", tmp_path, "--json").out)
    assert as_json["classes"][0]["negative"] == by_name["happiness"]["negative"]


def test_negative_answer_without_descriptors_fails_the_run(llm_server, tmp_path):
    def answer(model, prompt):
        if "absent from" in prompt and "of fear?" in prompt:
            return "I'm sorry, but I can't help with that."
        return "- drooping lids" if "absent from" in prompt else "- raised brows"

    llm_server.answer = answer
    result = _generate(llm_server, tmp_path, "--negatives")
    assert result.code == 1
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert "negative answer for class 'fear'" in result.err and "--negative-template" in result.err
    assert "nothing was written" in result.err
    assert not (tmp_path / "mafw").exists()


def test_own_negative_template(llm_server, tmp_path):
    template = tmp_path / "neg.j2"
    template.write_text("What does a face showing {{ class_name }} NOT show? Name the absent features.")
    llm_server.answer = lambda model, prompt: "- drooping lids" if "NOT show" in prompt else "- bright eyes"
    result = _generate(llm_server, tmp_path / "st", "--negatives", "--negative-template", str(template), classes="joy,calm")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert [c["negative"]["description"] for c in data["classes"]] == ["drooping lids."] * 2
    assert data["provenance"]["negative_template"] == "neg.j2" and data["provenance"]["negative_template_user_file"]


def test_variants_one_per_sample_each_within_budget(llm_server, tmp_path):
    result = _generate(llm_server, tmp_path, "--samples", "3", "--seed", "1", "--variants")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    for entry in data["classes"]:
        assert entry["variants"] == [f"{BASE}, flared nostrils.", f"{BASE}, tightened eyelids.", f"{BASE}, dropped jaw."]
        assert all(count_tokens(v) <= budget(8) for v in entry["variants"])
        # the merged description ranks the four shared features first, then each sample's own
        assert entry["descriptors"][:4] == BASE.split(", ") and len(entry["raw_answers"]) == 3
        assert "negative" not in entry
    assert Store(tmp_path).load("mafw/v2").variant_descriptions[0][1].endswith("tightened eyelids.")
    shown = run_cli("show", "mafw/v2", "--store", tmp_path)
    assert shown.code == 0 and "variants" in shown.out and "nostrils" in shown.out


def test_each_variant_is_fitted_to_the_budget_on_its_own(llm_server, tmp_path):
    result = _generate(llm_server, tmp_path, "--samples", "3", "--seed", "1", "--variants", "--contexts", "56",
                       classes="joy,calm")
    assert result.code == 0, result.err
    for entry in json.loads(result.out)["classes"]:
        # the merged description keeps one sample's own feature (19 tokens); each variant keeps its own
        assert entry["description"] == f"{BASE}, flared nostrils." and len(entry["dropped"]) == 2
        assert entry["variants"] == [f"{BASE}, flared nostrils.", f"{BASE}, tightened eyelids.", f"{BASE}, dropped jaw."]
        assert all(count_tokens(v) <= budget(56) for v in entry["variants"])


def test_variants_that_fit_into_the_same_text_are_refused(llm_server, tmp_path):
    result = _generate(llm_server, tmp_path, "--samples", "2", "--seed", "3", "--variants", "--contexts", "62",
                       classes="joy,calm")  # each sample's own last feature dropped to fit 13 tokens: alike
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert "answers for class 'joy' give one distinct variant" in result.err and "nothing was written" in result.err
    assert not (tmp_path / "joy").exists() and not (tmp_path / "custom").exists()


def test_variants_need_several_answers(llm_server, tmp_path):
    result = _generate(llm_server, tmp_path, "--variants")
    assert result.code == 1 and result.err.count("\n") == 1, result.err
    assert "--variants" in result.err and "--samples 2 or more" in result.err
    assert llm_server.requests == [] and not (tmp_path / "mafw").exists()


def test_several_templates_all_asked_concurrently(llm_server, tmp_path):
    llm_server.latency = 0.3  # long enough for the requests of one batch to overlap
    result = _generate(llm_server, tmp_path, "--template", "llm_query", "--template", "llm_short_list",
                       "--samples", "2", "--seed", "5", "--variants", "--negatives", classes="joy,calm,fear")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    prov = data["provenance"]
    assert prov["template"] == "llm_query" and prov["templates"] == ["llm_query", "llm_short_list"]
    assert len(prov["templates_sha256"]) == 2 and prov["variants"] is True
    prompts = [r["messages"][0]["content"] for r in llm_server.requests]
    assert len(prompts) == 3 * (2 + 2 + 2)  # 3 classes x (2 templates + the negative question) x 2 samples
    assert sum("List 6 to 10" in p for p in prompts) == 6 and sum("absent from" in p for p in prompts) == 6
    assert llm_server.max_in_flight > 6  # more than one template's (or the negative question's) requests at once
    for entry in data["classes"]:
        # one per answer, but both templates answered alike for the same seed: 2 distinct variants kept
        assert len(entry["raw_answers"]) == 4 and len(entry["variants"]) == 2
        assert entry["variants"][0] != entry["variants"][1]
        assert len(entry["negative"]["raw_answers"]) == 2
    assert "dropped 2 variant(s) repeating another" in result.err


def test_one_template_per_sample_is_enough_for_variants(llm_server, tmp_path):
    llm_server.answer = lambda model, prompt: "- raised brows\n- wide eyes" if "List 6 to 10" in prompt else "- open mouth"
    result = _generate(llm_server, tmp_path, "--template", "llm_query", "--template", "llm_short_list",
                       "--variants", "--temperature", "0", classes="joy,calm")
    assert result.code == 0, result.err
    assert all(len(entry["variants"]) == 2 for entry in json.loads(result.out)["classes"])


def test_negative_template_without_negatives_is_refused(llm_server, tmp_path):
    broken = tmp_path / "broken.j2"
    broken.write_text("What is absent from {{ class_name ")  # does not even parse
    for template in (str(broken), "llm_negative"):
        result = _generate(llm_server, tmp_path / "st", "--negative-template", template, classes="joy,calm")
        assert result.code == 1 and result.err.count("\n") == 1, result.err
        assert "--negative-template" in result.err and "--negatives" in result.err
    assert llm_server.requests == [] and not (tmp_path / "st").exists()
