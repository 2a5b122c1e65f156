"""Backbone names and weights files; native checkpoints: round trip and bad files."""

from __future__ import annotations

import pytest
import torch

import trainer
from trainer.model import ClassTexts, ModelConfig, build_model, load_model, model_from_payload, model_payload, save_model
from trainer.model.backbone import create_backbone
from trainer.model.errors import BackboneError, CheckpointError

TEXTS = ClassTexts.from_class_names(["happiness", "sadness", "anger"])


def test_unknown_backbone_lists_close_names():
    with pytest.raises(BackboneError, match=r"does not know the backbone 'ViT-B-23'.*ViT-B-32"):
        build_model(ModelConfig(backbone="ViT-B-23"), TEXTS)


def test_missing_weights_say_what_and_where(tmp_path):
    with pytest.raises(BackboneError, match="does not exist"):
        create_backbone(ModelConfig(backbone="tiny", pretrained=str(tmp_path / "nope.pt")))
    with pytest.raises(BackboneError, match="no weights file in .* put one of open_clip_model.safetensors"):
        create_backbone(ModelConfig(backbone="tiny", pretrained=str(tmp_path)))
    with pytest.raises(BackboneError, match=r"not on this machine.*ViT-B-32.pt"):
        create_backbone(ModelConfig(backbone="ViT-B-32", pretrained="openai"))


def test_weights_from_file_and_directory(tmp_path):
    torch.manual_seed(0)
    source = create_backbone(ModelConfig(backbone="tiny"), load_weights=False).clip
    state = {"module." + k: v for k, v in source.state_dict().items()}  # DataParallel-style prefix
    torch.save({"state_dict": state}, tmp_path / "model.pth")
    for where in (tmp_path / "model.pth", tmp_path):
        loaded = create_backbone(ModelConfig(backbone="tiny", pretrained=str(where))).clip
        torch.testing.assert_close(loaded.visual.proj, source.visual.proj, rtol=0, atol=0)


def test_weights_of_the_wrong_shape(tmp_path):
    wide = create_backbone(ModelConfig(backbone="tiny", image_size=64), load_weights=False).clip.state_dict()
    wide["text_projection"] = torch.zeros(64, 32)
    torch.save(wide, tmp_path / "w.pt")
    with pytest.raises(BackboneError, match=r"text_projection has shape \(64, 32\), the model expects \(64, 64\)"):
        create_backbone(ModelConfig(backbone="tiny", pretrained=str(tmp_path / "w.pt")))


def test_native_round_trip(tmp_path):
    torch.manual_seed(1)
    model = build_model(ModelConfig(backbone="tiny", mode="dfer", n_ctx=4, num_frames=8), TEXTS)
    with torch.no_grad():
        model.prompt_learner.ctx.add_(1.0)  # a "trained" context must survive the trip
    path = save_model(model, tmp_path / "sub" / "m.pth", extra={"epoch": 3})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "dferclip-toolkit" and raw["format_version"] == 1 and raw["epoch"] == 3
    assert raw["model"]["preprocessing"]["normalize"] == "none"
    loaded = trainer.load_model(path)
    assert not loaded.training and loaded.config == model.config and loaded.texts == model.texts
    x = torch.rand(2, 8, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
        torch.testing.assert_close(model_from_payload(model_payload(model)).eval()(x), model(x), rtol=0, atol=0)
    assert not list(path.parent.glob("*.tmp"))


def test_bad_native_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "none.pth")
    (tmp_path / "text.pth").write_text("hello")
    with pytest.raises(CheckpointError, match="not a DFER-CLIP toolkit checkpoint"):
        load_model(tmp_path / "text.pth")
    torch.save({"format": "dferclip-toolkit", "format_version": 9, "model": {}}, tmp_path / "new.pth")
    with pytest.raises(CheckpointError, match="format_version 9"):
        load_model(tmp_path / "new.pth")
    model = build_model(ModelConfig(backbone="tiny", n_ctx=2), TEXTS)
    payload = model_payload(model)
    payload["state_dict"]["prompt_learner.ctx"] = torch.zeros(3, 5, 64)
    torch.save({"format": "dferclip-toolkit", "format_version": 1, "model": payload}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=r"prompt_learner.ctx has shape \(3, 5, 64\), expected \(3, 2, 64\)"):
        load_model(tmp_path / "bad.pth")


def test_import_trainer_stays_light():
    import subprocess
    import sys

    code = "import sys, trainer; assert 'torch' not in sys.modules and 'open_clip' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    from trainer.model.checkpoint import load_model as direct

    assert trainer.load_model is direct


def test_tag_found_in_local_cache_and_gelu_kind_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = tmp_path / ".cache" / "open_clip"
    cache.mkdir(parents=True)
    (cache / "vit_b_32-laion2b_e16-af8dbd0c.pth").write_bytes(b"")  # found before anything is read
    with pytest.raises(BackboneError, match="trained with GELU; set quick_gelu to False"):
        create_backbone(ModelConfig(backbone="ViT-B-32", pretrained="laion2b_e16"))
