"""The pixel-only captioner (bench/pixel_captioner.py) behind the OpenAI-compatible server, driven by
the real `promptkit describe-clips`, and a run trained on what it wrote."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from cli_runner import run_cli
from cli_runner import trainer_cli as cli

from promptkit.classes import BUILTIN_CLASS_SETS
from promptkit.cliptexts import ClipTextStore

REPO = Path(__file__).resolve().parents[2]


def _captioner():
    if "pixel_captioner" not in sys.modules:
        spec = importlib.util.spec_from_file_location("pixel_captioner", REPO / "bench" / "pixel_captioner.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["pixel_captioner"] = module
        spec.loader.exec_module(module)
    return sys.modules["pixel_captioner"]


@pytest.fixture(scope="module")
def described(clips, tmp_path_factory):
    """The tiny clips described by the captioner into a fresh store: (store, set)."""
    module = _captioner()
    store = tmp_path_factory.mktemp("store")
    server = module.serve(bank_size=200)
    try:
        import os

        os.environ.setdefault("OPENAI_API_KEY", "sk-local")
        result = run_cli("describe-clips", "--list", clips[0], "--list", clips[1], "--model", module.MODEL,
                         "--base-url", server.url, "--name", "world", "--store", store, "--frames", 3)
    finally:
        server.stop()
    assert result.code == 0, result.err
    return store, ClipTextStore(store).load("world")


def test_the_captioner_describes_every_clip_from_its_pixels_without_naming_emotions(described):
    _, cts = described
    assert len(cts.texts) + len(cts.missing) == 21 and len(cts.texts) >= 18
    emotions = {name.lower() for names in BUILTIN_CLASS_SETS.values() for name in names}
    for text in cts.texts.values():
        assert not emotions & set(re.findall(r"[a-z]+", text.lower()))
        assert text.startswith(("At first:", "Throughout the clip:"))
    assert len(set(cts.texts.values())) > 3  # the texts follow the clips, they are not one answer
    assert cts.provenance["model"] == "pixel-captioner"


def test_a_run_trains_with_the_captioner_s_texts(described, clips, capsys, tmp_path):
    store, _ = described
    train, test = clips
    code, _, err = cli(capsys, "run", "--train-list", train, "--test-list", test, "--epochs", 1, "--batch", 7,
                       "--frames", 4, "--workers", 0, "--device", "cpu", "--quiet", "--out", tmp_path / "r",
                       "--store", store, "--clip-texts", "world", "--clip-text-mode", "fuse")
    assert code == 0, err
