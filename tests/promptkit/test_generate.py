"""`promptkit generate` end to end: the real openai client against a real local HTTP server."""

from __future__ import annotations

import json
import re

import pytest
from fake_llm import API_KEY, closed_port, llm_server, run_cli  # noqa: F401  (fixture import)

ANSWERS = {
    "happiness": (
        "Sure! Here are some useful visual features for recognizing happiness:\n\n"
        "1. **Raised cheeks**: the cheeks lift and round out.\n"
        "2. **Crow's feet wrinkles**: fine lines at the outer eye corners (AU6).\n"
        "3. **Upturned lip corners**: the mouth is pulled up into a smile.\n\n"
        "Let me know if you'd like more detail!"
    ),
    "sadness": " drooping upper eyelids, a downturned mouth, raised inner brows, and a trembling chin.",
    "neutral": "- relaxed forehead\n- lips gently closed\n- steady gaze\n",
    "anger": "### Eyebrows\n- Lowered and drawn together\n### Mouth\n- Lips pressed firmly\n- Clenched jaw",
    "surprise": "Certainly!\n* eyebrows raised high\n* eyes wide open\n* jaw dropped\nI hope this helps.",
    "disgust": "1) wrinkled nose 2) raised upper lip 3) narrowed eyes",
    "fear": "Here is a list:\n\n1. Widened eyes\n2. Raised and drawn-together brows\n3. Stretched lips\n",
    "contempt": "- one-sided lip raise\n- smirk\n- head tilted back",
    "anxiety": "Some visual features include darting eyes, lip biting, and tense brows.",
    "helplessness": "1. Slumped head\n2. Raised inner brows\n3. Blank stare\n\nFeel free to ask more.",
    "disappointment": "- **Mouth corners pulled down** \u2013 the lips droop\n- **Averted gaze**\n- Lips pressed together\n- Sighing",
}
CHATTER = ("sure", "let me know", "here are", "hope", "certainly", "feel free", "here is")


def answer_by_class(model: str, prompt: str) -> str:
    match = re.search(r"facial expression of (.+?)\?", prompt)
    return ANSWERS[match.group(1)] if match else "1. Raised brows"


def _generate(server, store, *extra):
    return run_cli("generate", "--classes", "mafw", "--model", "fake-llm", "--base-url", server.url,
                   "--store", store, "--json", *extra)


def test_generate_mafw_varied_answers_and_faults(llm_server, tmp_path):
    llm_server.answer = answer_by_class
    llm_server.faults = {"of anger?": ["429"], "of fear?": ["500"], "of surprise?": ["slow:2.5"]}
    result = _generate(llm_server, tmp_path, "--timeout", "0.6", "--retries", "3")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["set_id"] == "mafw/v2"  # the shipped mafw/v1 holds the first number
    names = [c["name"] for c in data["classes"]]
    assert names[:7] == ["happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear"]
    assert names[7:] == ["contempt", "anxiety", "helplessness", "disappointment"]
    by_name = {c["name"]: c for c in data["classes"]}
    assert by_name["happiness"]["descriptors"] == ["raised cheeks", "crow's feet wrinkles", "upturned lip corners"]
    assert by_name["sadness"]["descriptors"][:2] == ["drooping upper eyelids", "a downturned mouth"]
    assert by_name["anger"]["descriptors"] == ["eyebrows lowered and drawn together", "lips pressed firmly", "clenched jaw"]
    assert by_name["disgust"]["descriptors"] == ["wrinkled nose", "raised upper lip", "narrowed eyes"]
    assert by_name["disappointment"]["descriptors"][:2] == ["mouth corners pulled down", "averted gaze"]
    for entry in data["classes"]:
        assert entry["descriptors"], entry["name"]
        assert entry["description"].endswith(".")
        assert entry["tokens"] <= 67
        text = " ".join(entry["descriptors"]).lower()
        assert not any(word in text for word in CHATTER), (entry["name"], text)
    # 11 answers + one 429, one 500 and one timed-out request, all retried by the client
    assert len(llm_server.requests) == 14
    assert llm_server.max_in_flight > 1
    prov = data["provenance"]
    assert prov["model"] == "fake-llm" and prov["endpoint_host"].startswith("127.0.0.1:")
    assert prov["template"] == "llm_query" and prov["template_sha256"].startswith("sha256:")
    stored = (tmp_path / "mafw" / "v2.json").read_text()
    assert API_KEY not in stored and "secret" not in stored


def test_rerun_makes_a_new_version_and_leaves_the_old_one(llm_server, tmp_path):
    assert _generate(llm_server, tmp_path).code == 0
    first = (tmp_path / "mafw" / "v2.json").read_bytes()
    result = _generate(llm_server, tmp_path)
    assert result.code == 0 and json.loads(result.out)["version"] == 3
    assert (tmp_path / "mafw" / "v2.json").read_bytes() == first


def test_samples_rank_by_frequency_then_first_appearance(llm_server, tmp_path):
    plans = {"joy": ["- smile\n- raised cheeks", "- raised cheeks\n- open mouth", "- open mouth\n- raised cheeks"]}
    seen: dict[str, int] = {}

    def answer(model, prompt):
        name = re.search(r"expression of (.+?)\?", prompt).group(1)
        index = seen.get(name, 0)
        seen[name] = index + 1
        return plans.get(name, ["- calm eyes"] * 3)[index]

    llm_server.answer = answer
    result = run_cli("generate", "--classes", "joy,calm", "--name", "mine", "--model", "fake-llm",
                     "--base-url", llm_server.url, "--store", tmp_path, "--samples", "3", "--seed", "7",
                     "--concurrency", "1", "--json")
    assert result.code == 0, result.err
    joy = json.loads(result.out)["classes"][0]
    assert joy["descriptors"] == ["raised cheeks", "open mouth", "smile"]
    assert len(joy["raw_answers"]) == 3
    seeds = [r.get("seed") for r in llm_server.requests]
    assert sorted(seeds) == [7, 7, 8, 8, 9, 9]


def test_long_answers_drop_lowest_ranked_descriptors(llm_server, tmp_path):
    items = [f"feature number {word} of the face" for word in
             "one two three four five six seven eight nine ten eleven twelve thirteen fourteen".split()]
    llm_server.answer = lambda model, prompt: "\n".join(f"- {item}" for item in items)
    result = run_cli("generate", "--classes", "a,b", "--model", "fake-llm", "--base-url", llm_server.url,
                     "--store", tmp_path, "--contexts", "40", "--json")
    assert result.code == 0, result.err
    entry = json.loads(result.out)["classes"][0]
    assert entry["tokens"] <= 77 - 2 - 40
    assert entry["descriptors"] + entry["dropped"] == items  # best-ranked kept, whole phrases dropped
    assert entry["dropped"] and all(item in entry["description"] for item in entry["descriptors"])


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--model", "no-such-model"], {}, "model 'no-such-model' not found"),
        ([], {"OPENAI_API_KEY": "sk-wrong"}, "rejected the API key (401)"),
        ([], {"OPENAI_API_KEY": ""}, "no API key"),
        (["--classes", "bogus"], {}, "unknown class set 'bogus'"),
        (["--classes", "a,b,A"], {}, "duplicate class name"),
        (["--classes", "a,,b"], {}, "empty name"),
        (["--template", "nope"], {}, "unknown template 'nope'"),
    ],
)
def test_bad_input_one_line_and_nothing_written(llm_server, tmp_path, monkeypatch, args, env, expected):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    base = ["--classes", "mafw", "--model", "fake-llm"]
    result = run_cli("generate", *base, "--base-url", llm_server.url, "--store", tmp_path / "st", "--retries", "0", *args)
    assert result.code == 1
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert expected in result.err
    assert not (tmp_path / "st").exists()


def test_unreachable_server(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    url = f"http://127.0.0.1:{closed_port()}/v1"
    result = run_cli("generate", "--classes", "a,b", "--base-url", url, "--store", tmp_path, "--retries", "0")
    assert result.code == 1
    assert f"cannot reach the LLM server at {url}: connection refused" in result.err
    assert list(tmp_path.iterdir()) == []


def test_answer_without_descriptors_names_the_class(llm_server, tmp_path):
    llm_server.answer = lambda model, prompt: (
        "I'm sorry, but I can't help with that." if "of fear?" in prompt else "- raised brows"
    )
    result = _generate(llm_server, tmp_path)
    assert result.code == 1
    assert "no usable descriptor" in result.err and "'fear'" in result.err
    assert not (tmp_path / "mafw").exists()


def test_user_template_missing_variable_is_an_error_before_any_request(llm_server, tmp_path):
    template = tmp_path / "q.j2"
    template.write_text("Describe {{ class_name }} in the style of {{ author }}.")
    result = _generate(llm_server, tmp_path / "st", "--template", str(template))
    assert result.code == 1 and "variable 'author'" in result.err
    assert llm_server.requests == []


def test_unwritable_store_fails_before_any_request(llm_server, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = _generate(llm_server, blocker / "store")
    assert result.code == 1 and "not writable" in result.err
    assert llm_server.requests == []
