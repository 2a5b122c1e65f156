"""`trainer pretrain` at a tiny scale, its output folder, and the tiny face-CLIP's weight checks."""

from __future__ import annotations

import json

import pytest
import torch
from cli_runner import trainer_cli as cli

from trainer.cli import main
from trainer.errors import BackboneError, PretrainError
from trainer.model.backbone import create_backbone
from trainer.model.config import ModelConfig
from trainer.model.tinyface import CARD_NAME, WEIGHTS_NAME, file_sha256, shipped_dir
from trainer.pretrain.run import check_caption_fit

TINY_ARGS = ["--steps", "2", "--pairs", "48", "--eval-pairs", "16", "--eval-clips", "1", "--batch", "16",
             "--workers", "1", "-q"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pt") / "tinyface"
    with pytest.raises(SystemExit) as info:
        main(["pretrain", "--out", str(out), *TINY_ARGS])
    assert info.value.code == 0
    return out


def test_pretrain_writes_weights_config_and_card(pretrained):
    assert sorted(p.name for p in pretrained.iterdir()) == [CARD_NAME, "config.json", WEIGHTS_NAME]
    card = json.loads((pretrained / CARD_NAME).read_text())
    assert card["steps"] == 2 and card["data"]["pairs"] == 48 and card["data"]["renderer_version"] == 4
    assert 0.0 <= card["retrieval"]["i2t_top1"] <= 1.0 and card["retrieval"]["pool"] == 16
    assert set(card["zero_shot"]["uar"]) == {"descriptions dfew/v1", "class names"}
    assert card["weights_sha256"] == file_sha256(pretrained / WEIGHTS_NAME)
    assert not list(pretrained.parent.glob(".*partial*"))


def test_pretrained_folder_loads_as_the_tinyface_backbone(pretrained):
    from safetensors.torch import load_file

    backbone = create_backbone(ModelConfig(backbone="tinyface", pretrained=str(pretrained)))
    saved = load_file(str(pretrained / WEIGHTS_NAME))
    assert saved["visual.conv1.weight"].dtype == torch.float16
    own = backbone.clip.state_dict()["visual.conv1.weight"]
    assert own.dtype == torch.float32 and torch.equal(own, saved["visual.conv1.weight"].float())
    assert backbone.image_size == 64 and backbone.weights == str(pretrained / WEIGHTS_NAME)


def test_pretraining_is_reproducible(tmp_path):
    """The same command twice, each in a fresh process as a user runs it: byte-identical weights."""
    import subprocess
    import sys

    for name in ("a", "b"):
        cmd = [sys.executable, "-m", "trainer", "pretrain", "--out", str(tmp_path / name), *TINY_ARGS]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert file_sha256(tmp_path / "a" / WEIGHTS_NAME) == file_sha256(tmp_path / "b" / WEIGHTS_NAME)


def test_existing_out_is_refused_before_any_work(pretrained, capsys):
    stamp = (pretrained / WEIGHTS_NAME).stat().st_mtime_ns
    code, _, err = cli(capsys, "pretrain", "--out", pretrained, *TINY_ARGS)
    assert code == 1 and err.count("\n") == 1 and "already exists" in err
    assert (pretrained / WEIGHTS_NAME).stat().st_mtime_ns == stamp


def test_out_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    code, _, err = cli(capsys, "pretrain", "--out", tmp_path / "f" / "o", *TINY_ARGS)
    assert code == 1 and "is a file" in err and err.count("\n") == 1


def test_caption_vocabulary_must_fit_the_text_context():
    assert check_caption_fit(77) <= 77
    with pytest.raises(PretrainError, match="does not fit the text context"):
        check_caption_fit(40)


def test_corrupt_or_missing_weights_are_one_clear_error(pretrained, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(pretrained, broken)
    data = bytearray((broken / WEIGHTS_NAME).read_bytes())
    data[-10] ^= 0xFF
    (broken / WEIGHTS_NAME).write_bytes(bytes(data))
    with pytest.raises(BackboneError, match="corrupt"):
        create_backbone(ModelConfig(backbone="tinyface", pretrained=str(broken)))
    (broken / WEIGHTS_NAME).unlink()
    with pytest.raises(BackboneError, match="missing"):
        create_backbone(ModelConfig(backbone="tinyface", pretrained=str(broken)))


def test_shipped_weights_are_small_and_verified():
    weights = shipped_dir() / WEIGHTS_NAME
    assert weights.is_file() and weights.stat().st_size <= 10 * 1024 * 1024
    card = json.loads((shipped_dir() / CARD_NAME).read_text())
    assert card["weights_sha256"] == file_sha256(weights)
    backbone = create_backbone(ModelConfig(backbone="tinyface", pretrained="world"))
    assert backbone.weights == str(weights)


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    import safetensors.torch
    from safetensors import SafetensorError

    def full(state, path, metadata=None):
        with open(path, "wb") as handle:
            handle.write(b"partial")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    code, _, err = cli(capsys, "pretrain", "--out", tmp_path / "o", *TINY_ARGS)
    assert code == 1 and err.count("\n") == 1 and "no space left on the device" in err and "nothing was kept" in err
    assert list(tmp_path.iterdir()) == []
