"""`promptkit describe-clips` end to end: tiny frame folders on disk, a list file, the fake vision
server over HTTP, the real CLI (with trainer's plugin registered as the entry point does)."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from cli_runner import Result
from PIL import Image

from trainer.data.clip_images import default_name, jpeg_bytes

API_KEY = "sk-test-describe"


def _fake_server_class():
    if "fake_llm" not in sys.modules:
        spec = importlib.util.spec_from_file_location("fake_llm", Path(__file__).parents[1] / "promptkit" / "fake_llm.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["fake_llm"] = module
        spec.loader.exec_module(module)
    return sys.modules["fake_llm"].FakeLLMServer


FakeLLMServer = _fake_server_class()


def promptkit(*args) -> Result:
    """The real promptkit app with describe-clips registered (the installed entry points may be older)."""
    from promptkit.cli import build_app
    from promptkit.clirun import run_app

    from trainer.commands import describe_cmd

    app = build_app()
    if "describe-clips" not in [info.name for info in app.registered_commands]:
        describe_cmd.register(app)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = run_app(app, argv=[str(a) for a in args])
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def data(tmp_path, monkeypatch):
    """data/faces/clips/00k: 6 PNG frames (64 + 8k) x 48 px, frame f a grey level 30f; the list
    data/faces/train.txt names them by absolute path."""
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    root = tmp_path / "data"
    lines = []
    for k in range(3):
        folder = root / "faces" / "clips" / f"{k:03d}"
        folder.mkdir(parents=True)
        for f in range(6):
            Image.fromarray(np.full((48, 64 + 8 * k, 3), 30 * f, np.uint8)).save(folder / f"{f + 1:04d}.png")
        lines.append(f"{folder} 6 {k}")
    (root / "faces" / "train.txt").write_text("\n".join(lines) + "\n")
    return root


def describe(server, data, store, *extra):
    return promptkit("describe-clips", "--list", data / "faces" / "train.txt", "--data-root", data, "--model", "fake-llm",
                     "--base-url", server.url, "--store", store, "--concurrency", 2, "--retries", 0, *extra)


def images_of(body: dict) -> list[Image.Image]:
    parts = body["messages"][0]["content"][1:]
    return [Image.open(io.BytesIO(base64.b64decode(p["image_url"]["url"].split(",", 1)[1]))) for p in parts]


def test_describe_writes_one_text_per_clip_keyed_by_its_id(tmp_path, data):
    store = tmp_path / "store"
    with FakeLLMServer(api_key=API_KEY) as server:
        result = describe(server, data, store, "--frames", 3, "--image-size", 32)
    assert result.code == 0, result.err
    assert "wrote faces/v1" in result.out and "3 clips, 3 texts, 0 missing" in result.out and "tokens:" in result.out
    assert "3/3 clips" in result.err and "clips/s" in result.err and "ETA" in result.err
    stored = json.loads((store / "clip-texts" / "faces" / "v1.json").read_text())
    assert sorted(stored["texts"]) == ["faces/clips/000", "faces/clips/001", "faces/clips/002"]  # relative to --data-root
    prov = stored["provenance"]
    assert prov["lists"] == [{"list": "train.txt", "clips": 3}] and prov["frames"] == 3 and prov["image_size"] == 32
    assert len(server.requests) == 3
    for body in server.requests:
        images = images_of(body)
        assert len(images) == 3 and all(image.format == "JPEG" for image in images)
        assert max(images[0].size) == 32  # the longer side scaled to --image-size
    # the frames sampled evenly: segments of 6 frames at their middles, 1, 3 and 5 (grey 30, 90, 150)
    greys = sorted(int(np.asarray(image.convert("L")).mean().round()) for image in images_of(server.requests[0]))
    assert greys == pytest.approx([30, 90, 150], abs=3)
    shown = promptkit("show", "faces", "--store", store)
    assert shown.code == 0 and "faces/clips/001" in shown.out


def test_a_list_with_a_missing_clip_is_one_line_before_any_request(tmp_path, data):
    listed = data / "faces" / "train.txt"
    listed.write_text(listed.read_text() + f"{data / 'faces' / 'clips' / 'gone'} 6 1\n")
    with FakeLLMServer(api_key=API_KEY) as server:
        result = describe(server, data, tmp_path / "store")
    assert result.code == 1 and len(result.err.strip().splitlines()) == 1
    assert "1 of 4 clips are unusable" in result.err and "gone" in result.err
    assert server.requests == [] and not (tmp_path / "store").exists()


def test_no_vision_at_the_endpoint_is_one_line_and_nothing_stored(tmp_path, data):
    with FakeLLMServer(api_key=API_KEY, reject_images="fake-llm is not a multimodal model") as server:
        result = describe(server, data, tmp_path / "store")
    assert result.code == 1 and len(result.err.strip().splitlines()) == 1
    assert "does not accept images" in result.err and "choose a vision model" in result.err
    assert not (tmp_path / "store" / "clip-texts").exists()


def test_a_stopped_run_resumes_with_the_same_command(tmp_path, data):
    store = tmp_path / "store"
    with FakeLLMServer(api_key=API_KEY, fail_after=1) as server:
        first = describe(server, data, store, "--concurrency", 1)
        assert first.code == 1 and "kept 1 of 3 described clips" in first.err
        assert len(list((store / "clip-texts" / "faces").glob(".work-*.jsonl"))) == 1
        server.fail_after, before = None, len(server.requests)
        second = describe(server, data, store, "--concurrency", 1, "--json")
    assert second.code == 0, second.err
    summary = json.loads(second.out)
    assert (summary["set_id"], summary["asked"], summary["resumed"], summary["texts"]) == ("faces/v1", 2, 1, 3)
    assert len(server.requests) - before == 2
    assert not list((store / "clip-texts" / "faces").glob(".work-*"))


def test_bad_options_are_one_line(tmp_path, data):
    with FakeLLMServer(api_key=API_KEY) as server:
        for extra, message in ((("--frames", 0), "--frames must be an integer from 1 to 16, got 0"),
                               (("--image-size", 8), "--image-size must be an integer from 32 to 4096, got 8"),
                               (("--name", "Bad Name"), "bad clip-text set name")):
            result = describe(server, data, tmp_path / "store", *extra)
            assert result.code == 1 and message in result.err, result.err
        assert server.requests == []


def test_jpeg_frames_never_grow_and_names_come_from_the_list_folder(tmp_path):
    small = Image.open(io.BytesIO(jpeg_bytes(np.zeros((20, 30, 3), np.uint8), 336)))
    assert small.size == (30, 20)
    assert default_name(tmp_path / "DFEW set_1" / "train.txt") == "dfew-set_1"


def test_video_clips_are_sampled_like_frame_folders(tmp_path):
    from trainer.data.clip_images import clip_images

    spec = importlib.util.spec_from_file_location("video_face_tests", Path(__file__).parent / "data" / "test_data_video_face.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "clips").mkdir()
    video = module.write_video(tmp_path / "clips" / "talk.mp4", 20)  # frame k (from 1) is grey 10 k
    (tmp_path / "list.txt").write_text(f"{video} 20 3\n")
    made = clip_images([tmp_path / "list.txt"], None, frames=4, image_size=32)
    assert made.lists == [{"list": "list.txt", "clips": 1}] and made.sources[0][0] == "clips/talk.mp4"
    images = [Image.open(io.BytesIO(data)) for data in made.sources[0][1]()]
    assert len(images) == 4 and max(images[0].size) == 32
    greys = [round(float(np.asarray(image.convert("L")).mean()) / 10) for image in images]
    assert greys == [3, 8, 13, 18]  # the segments' middles: frames 3, 8, 13, 18
