"""Describing clips with a vision LLM (the library loop), against the fake server over HTTP:
images as JPEG data URLs, screening, the resumable work file, and servers that refuse images."""

from __future__ import annotations

import base64
import io
import json

import pytest
from fake_llm import API_KEY, FakeLLMServer
from PIL import Image

from promptkit.cliptexts import ClipTextStore
from promptkit.describe import DescribeConfig, describe_clips, screen_answer
from promptkit.errors import DescribeError, LLMError
from promptkit.llm import LLMConfig

VLLM_NO_VISION = "fake-llm is not a multimodal model"
OPENAI_NO_VISION = "Invalid content type. image_url is only supported by certain models."


def jpeg(width: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, 16), (90, 60, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def clips(count: int, frames: int = 3):
    """Clip k's frames are 20 + k pixels wide, so the server can tell the clips apart."""
    return [(f"clips/{k:03d}", lambda k=k: [jpeg(20 + k)] * frames) for k in range(count)]


def by_clip(answers: dict[int, list[str]]):
    """A vision_answer that gives clip k the next of answers[k] (then the default answer)."""
    def answer(images: list[bytes]) -> str | None:
        k = Image.open(io.BytesIO(images[0])).size[0] - 20
        queue = answers.get(k)
        return queue.pop(0) if queue else None
    return answer


def config(server, **llm) -> DescribeConfig:
    settings = dict(model="fake-llm", base_url=server.url, api_key=API_KEY, concurrency=2, retries=0)
    return DescribeConfig(LLMConfig(**{**settings, **llm}), name="world", frames=3, settings={"image_size": 64})


def image_requests(server) -> list[list[dict]]:
    return [body["messages"][0]["content"] for body in server.requests]


def test_every_clip_is_asked_with_its_frames_as_jpeg_data_urls(tmp_path):
    store = ClipTextStore(tmp_path)
    seen = []
    with FakeLLMServer(api_key=API_KEY) as server:
        summary = describe_clips(config(server), clips(4), store, progress=lambda d, t: seen.append((d, t)))
    assert summary.set.set_id == "world/v1" and sorted(summary.set.texts) == [f"clips/{k:03d}" for k in range(4)]
    assert summary.asked == 4 and summary.resumed == 0 and summary.set.missing == {}
    for content in image_requests(server):
        assert content[0]["type"] == "text" and "brows" in content[0]["text"] and "3 images" in content[0]["text"]
        urls = [part["image_url"]["url"] for part in content[1:]]
        assert len(urls) == 3 and all(url.startswith("data:image/jpeg;base64,") for url in urls)
        assert base64.b64decode(urls[0].split(",", 1)[1])[:2] == b"\xff\xd8"  # a JPEG
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    prov = summary.set.provenance
    assert prov["source"] == "vision-llm" and prov["frames"] == 3 and prov["image_size"] == 64
    assert prov["endpoint_host"].startswith("127.0.0.1:") and API_KEY not in json.dumps(prov)
    assert prov["usage"]["prompt_tokens"] > 0 and prov["usage"] == summary.usage
    assert prov["usage"]["total_tokens"] == prov["usage"]["prompt_tokens"] + prov["usage"]["completion_tokens"]
    assert not list((tmp_path / "clip-texts" / "world").glob(".work-*"))


def test_screened_answers_are_asked_again_then_recorded_as_missing(tmp_path):
    answers = {0: ["I'm sorry, I can't help with identifying people.", "Sorry, I cannot do that."],
               1: ["The person looks happy: mouth corners rise.", "mouth corners rise, cheeks lift"],
               2: ["", "  "],
               3: ["Brows: drawn together. She seems ANGRY.", "eyes narrow; anger shows"]}
    with FakeLLMServer(api_key=API_KEY, vision_answer=by_clip(answers)) as server:
        summary = describe_clips(config(server), clips(5), ClipTextStore(tmp_path))
    cts = summary.set
    assert cts.missing == {"clips/000": "refusal", "clips/002": "empty", "clips/003": "named an emotion: anger"}
    assert cts.texts["clips/001"] == "mouth corners rise, cheeks lift" and "clips/004" in cts.texts
    assert summary.missing == {"refusal": 1, "empty": 1, "named an emotion": 1}
    assert summary.retried == 4 and len(server.requests) == 9
    assert cts.provenance["missing"] == summary.missing


@pytest.mark.parametrize("text, reason", [
    ("brows: inner corners rise\nmouth: corners pull back", None),
    ("As an AI, I do not describe faces.", "refusal"),
    ("eyes widen as if surprised", "named an emotion: surprised"),
    ("jaw: no visible change; mouth returns to neutral", "named an emotion: neutral"),
    ("The unhappy-looking... no wait: brows lower", None),  # "unhappy" is not the whole word "happy"
    ("", "empty"),
])
def test_screen_answer(text, reason):
    assert screen_answer(text) == reason


@pytest.mark.parametrize("message", [VLLM_NO_VISION, OPENAI_NO_VISION])
def test_a_server_without_vision_is_one_line_and_nothing_is_stored(tmp_path, message):
    with FakeLLMServer(api_key=API_KEY, reject_images=message) as server:
        with pytest.raises(DescribeError) as info:
            describe_clips(config(server), clips(3), ClipTextStore(tmp_path))
    line = str(info.value)
    assert "does not accept images" in line and "choose a vision model" in line and "\n" not in line
    assert "kept" not in line
    assert isinstance(info.value.__cause__, LLMError)
    assert not (tmp_path / "clip-texts").exists()


def test_an_image_too_large_for_the_server_says_lower_image_size(tmp_path):
    with FakeLLMServer(api_key=API_KEY, max_body=2000) as server:
        with pytest.raises(DescribeError, match="lower --image-size"):
            describe_clips(config(server), clips(2), ClipTextStore(tmp_path))
    assert not (tmp_path / "clip-texts").exists()


def test_a_stopped_run_keeps_its_answers_and_the_same_call_resumes(tmp_path):
    store = ClipTextStore(tmp_path)
    with FakeLLMServer(api_key=API_KEY, fail_after=2) as server:  # then a 400, which is not retried
        with pytest.raises(DescribeError, match="kept 2 of 5 described clips") as info:
            describe_clips(config(server, concurrency=1), clips(5), store)
        assert "run the same command again" in str(info.value)
        work = list((tmp_path / "clip-texts" / "world").glob(".work-*.jsonl"))
        assert len(work) == 1 and len(work[0].read_text().splitlines()) == 2
        assert store.list() == []  # no version until every clip has an outcome
        with open(work[0], "a", encoding="utf-8") as handle:
            handle.write('{"clip_id": "clips/004", "te')  # a line torn by a crash: ignored
        server.fail_after, before = None, len(server.requests)
        summary = describe_clips(config(server, concurrency=1), clips(5), store)
    assert len(server.requests) - before == 3 and summary.asked == 3 and summary.resumed == 2
    assert sorted(summary.set.texts) == [f"clips/{k:03d}" for k in range(5)]
    assert not work[0].exists()
    assert summary.usage["prompt_tokens"] > 0


def test_a_work_file_of_other_settings_is_not_reused(tmp_path):
    store = ClipTextStore(tmp_path)
    with FakeLLMServer(api_key=API_KEY, fail_after=1) as server:
        with pytest.raises(DescribeError):
            describe_clips(config(server, concurrency=1), clips(3), store)
        server.fail_after, before = None, len(server.requests)
        other = DescribeConfig(config(server).llm, name="world", frames=2, settings={"image_size": 64})
        describe_clips(other, clips(3, frames=2), store)
        assert len(server.requests) - before == 3  # a different --frames asks every clip again


def test_bad_settings_fail_before_any_request(tmp_path):
    with pytest.raises(DescribeError, match="--frames must be an integer from 1 to 16, got 17"):
        DescribeConfig(LLMConfig(model="m"), name="world", frames=17)
    with FakeLLMServer(api_key=API_KEY) as server:
        with pytest.raises(DescribeError, match="no clips"):
            describe_clips(config(server), [], ClipTextStore(tmp_path))
    assert server.requests == []


def test_ctrl_c_keeps_the_finished_answers(tmp_path):
    def stop():
        raise KeyboardInterrupt

    store = ClipTextStore(tmp_path)
    with FakeLLMServer(api_key=API_KEY) as server:
        with pytest.raises(KeyboardInterrupt, match="kept 2 of 3 described clips"):
            describe_clips(config(server, concurrency=1), [*clips(2), ("clips/009", stop)], store)
        before = len(server.requests)
        summary = describe_clips(config(server, concurrency=1), clips(3), store)
    assert len(server.requests) - before == 1 and summary.resumed == 2
