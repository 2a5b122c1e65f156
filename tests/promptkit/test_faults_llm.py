"""Fault injection for `promptkit generate`: a real local HTTP server answering badly.

Every failure ends in one `error:` line naming the problem, exit status non-zero, and no new
descriptor-set version in the store.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_llm import API_KEY, FakeLLMServer, closed_port, llm_server, run_cli  # noqa: F401  (fixture import)

from promptkit.parse import parse_answer

GOOD = "1. Raised eyebrows\n2. Widened eyes\n3. Open mouth\n"


def _generate(url, store, *extra):
    return run_cli("generate", "--classes", "happy,sad,calm", "--model", "fake-llm", "--base-url", url,
                   "--store", store, "--retries", "0", *extra)


def _nothing_written(store: Path) -> None:
    written = [p for p in store.rglob("*") if p.is_file()] if store.exists() else []
    assert written == [], written


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("fault, needle", [
    ("garbage", "not valid JSON"),
    ("html", "an HTML page"),
    ("notcompletion", "JSON that is not a chat completion"),
    ("nochoices", "no choices"),
])
def test_non_openai_answer_is_one_line_and_writes_nothing(llm_server, tmp_path, fault, needle):
    llm_server.faults = {"sad": [fault]}
    result = _generate(llm_server.url, tmp_path)
    assert result.code == 1, result.err
    line = _one_line(result.err)
    assert needle in line and "/v1" in line


def test_null_content_is_a_class_without_descriptor(llm_server, tmp_path):
    llm_server.faults = {"calm": ["nocontent"]}
    result = _generate(llm_server.url, tmp_path)
    assert result.code == 1
    line = _one_line(result.err)
    assert "'calm'" in line and "(empty)" in line
    _nothing_written(tmp_path)


CHATTER = ("Sure! I'd be happy to help you with that. Facial expressions can vary a lot from person to "
           "person, and context matters. Have a great day!")
REFUSAL = ("Unfortunately, I do not have enough information to describe that expression reliably. "
           "Could you provide more context?")


@pytest.mark.parametrize("answer, quoted", [(CHATTER, "Sure! I'd be happy"), (REFUSAL, "Unfortunately, I do not")])
def test_chatter_or_refusal_fails_naming_class_and_answer(llm_server, tmp_path, answer, quoted):
    llm_server.answer = lambda model, prompt: answer if "sad" in prompt else GOOD
    result = _generate(llm_server.url, tmp_path)
    assert result.code == 1, result.out
    line = _one_line(result.err)
    assert "'sad'" in line and quoted in line and "nothing was written" in line
    _nothing_written(tmp_path)


def test_every_class_chatter_names_the_count(llm_server, tmp_path):
    llm_server.answer = lambda model, prompt: CHATTER
    result = _generate(llm_server.url, tmp_path)
    assert result.code == 1
    line = _one_line(result.err)
    assert "'happy'" in line and "2 other class(es)" in line and "'sad'" in line
    _nothing_written(tmp_path)


@pytest.mark.parametrize("answer, absent", [
    ("Here you go:\n- a closed resting mouth\n- relaxed brows", "here you go"),
    ("### Visual features of helplessness\n- slumped expression\n- drooping eyelids", "visual features"),
    ("Sure! I'd be happy to help.\n\n- tense lips\n- I hope you find this useful", "hope"),
])
def test_filler_headings_are_never_glued_onto_descriptors(answer, absent):
    descriptors = parse_answer(answer)
    assert descriptors and all(absent not in d.lower() for d in descriptors), descriptors


def test_filler_with_samples_stores_clean_descriptors(llm_server, tmp_path):
    answers = iter(["Here you go:\n- a closed resting mouth\n- relaxed brows",
                    "### Visual features of calm\n- relaxed brows\n- soft gaze",
                    "Sure! I'd be happy to help. Have a great day!"] * 20)
    llm_server.answer = lambda model, prompt: next(answers)
    result = _generate(llm_server.url, tmp_path, "--samples", "3", "--concurrency", "1", "--json")
    assert result.code == 0, result.err
    for entry in json.loads(result.out)["classes"]:
        for descriptor in entry["descriptors"]:
            assert not re.search(r"here you go|visual features|happy to help|great day", descriptor), descriptor


def test_password_in_base_url_is_never_printed(llm_server, tmp_path):
    secret = "hunter2pw"
    port = closed_port()
    result = _generate(f"http://alice:{secret}@127.0.0.1:{port}/v1", tmp_path)
    assert result.code == 1 and secret not in result.err and "alice" not in result.err
    assert "127.0.0.1" in _one_line(result.err)
    llm_server.faults = {"happy": ["html"]}
    url = llm_server.url.replace("http://", f"http://alice:{secret}@")
    result = _generate(url, tmp_path)
    assert result.code == 1 and secret not in result.err + result.out
    bad = run_cli("generate", "--classes", "a,b", "--base-url", f"ftp://alice:{secret}@host/v1", "--store", tmp_path)
    assert bad.code == 1 and secret not in bad.err


def test_ctrl_c_against_slow_server_stops_cleanly(tmp_path):
    """SIGINT while requests are in flight: one line, exit 130, no version, no asyncio noise."""
    script = Path(sys.executable).parent / "promptkit"
    if not script.exists():
        pytest.skip("console script promptkit is not installed")
    with FakeLLMServer(api_key=API_KEY, latency=30.0) as server:
        env = {**os.environ, "OPENAI_API_KEY": API_KEY, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [str(script), "generate", "--classes", "mafw", "--samples", "3", "--model", "fake-llm",
             "--base-url", server.url, "--store", str(tmp_path), "--retries", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            # a shell without job control starts background jobs with SIGINT ignored, and the child
            # would inherit that: give it the default, as a terminal's Ctrl-C finds it
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.monotonic() + 60
            while server.in_flight < 5 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.1)
            assert server.in_flight >= 5, "the requests never reached the server"
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0], err
    assert "Task exception" not in err and "Traceback" not in err
    _nothing_written(tmp_path)


def test_embed_refuses_a_backbone_without_weights(tmp_path):
    result = run_cli("embed", "dfew/v1", "--backbone", "ViT-B-32", "--out", tmp_path / "o", "--store", tmp_path / "s")
    assert result.code == 1
    line = _one_line(result.err)
    assert "no weights" in line and "--pretrained" in line and "--random-weights" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flag, value", [("--temperature", "nan"), ("--timeout", "inf"), ("--timeout", "nan")])
def test_a_non_finite_llm_number_is_one_line(tmp_path, flag, value):
    result = run_cli("generate", "--classes", "dfew", "--base-url", "http://127.0.0.1:9/v1", "--store", tmp_path, flag, value)
    assert result.code != 0 and value in result.err and "Traceback" not in result.err
    assert not list(tmp_path.rglob("*.json"))
