"""PEFT delta checkpoints: only what is not the base weights' own, a reference to the base weights
and their sha256; identical logits after reload; a moved, missing or different base refused."""

from __future__ import annotations

import io
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from trainer.model import ClassTexts, ModelConfig, build_model, load_model, model_payload, save_model
from trainer.model.checkpoint import DELTA_VERSION, FORMAT_VERSION, describe_checkpoint
from trainer.model.errors import CheckpointError
from trainer.model.tinyface import WEIGHTS_NAME, file_sha256, read_card, shipped_dir

TEXTS = ClassTexts.from_class_names(["happiness", "sadness", "anger"])


def trained(peft: str, pretrained: str | None = "world", backbone: str = "tinyface"):
    """A PEFT model whose trainable weights moved away from their initial values, as after training."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone=backbone, pretrained=pretrained, num_frames=2, peft=peft), TEXTS)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def logits(model, seed: int = 1) -> torch.Tensor:
    frames = torch.rand(2, 2, 3, model.image_size, model.image_size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model(frames)  # (2, n_cls)


@pytest.fixture()
def base_file(tmp_path):
    """The shipped tinyface weights as a plain file (no card): its sha256 is streamed, not the card's."""
    path = tmp_path / "base" / "tinyface.safetensors"
    path.parent.mkdir()
    shutil.copy(shipped_dir() / WEIGHTS_NAME, path)
    return path


@pytest.mark.parametrize("peft", ["lora", "adapter"])
def test_delta_round_trip_gives_identical_logits_and_is_much_smaller(peft, tmp_path):
    model = trained(peft)
    path = save_model(model, tmp_path / "delta.pt")
    full = tmp_path / "full.pt"
    torch.save({"format": "dferclip-toolkit", "format_version": FORMAT_VERSION, "model": model_payload(model)}, full)
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == DELTA_VERSION
    base = raw["model"]["base_weights"]
    assert base == {"pretrained": "world", "sha256": read_card(shipped_dir())["weights_sha256"]}
    assert base["sha256"] == file_sha256(shipped_dir() / WEIGHTS_NAME)
    loaded = load_model(path)
    assert torch.equal(logits(loaded), logits(model))
    assert path.stat().st_size < full.stat().st_size / 3

    # what was left out is exactly what a fresh build from the base weights has, unchanged ...
    stored = raw["model"]["state_dict"]
    reference = build_model(ModelConfig(backbone="tinyface", pretrained="world", num_frames=2, peft=peft), TEXTS)
    ref_state, own = reference.state_dict(), model.state_dict()
    left_out = set(own) - set(stored)
    assert left_out and all(torch.equal(own[k], ref_state[k]) for k in left_out)
    # ... and every trainable weight (PEFT, temporal model, prompt context) and the prompt buffers are stored
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable <= set(stored) and any("lora_" in k or ".adapter." in k for k in stored)
    assert {"prompt_learner.ctx", "prompt_learner.embeddings", "prompt_learner.token_ids"} <= set(stored)
    assert not any(k.startswith("text_encoder.") for k in stored)
    summary = describe_checkpoint(path)
    assert summary["base_weights"] == base and summary["format_version"] == DELTA_VERSION


def test_a_delta_over_a_plain_file_hashes_it_and_refuses_another_base(base_file, tmp_path):
    model = trained("lora", str(base_file))
    path = save_model(model, tmp_path / "delta.pt")
    recorded = torch.load(path, weights_only=True)["model"]["base_weights"]
    assert recorded == {"pretrained": str(base_file), "sha256": file_sha256(base_file)}

    keep = tmp_path / "kept.safetensors"
    shutil.copy(base_file, keep)
    weights = load_file(str(base_file))
    weights["visual.attnpool.c_proj.weight"] = weights["visual.attnpool.c_proj.weight"] * 1.01
    save_file(weights, str(base_file))  # same ref, other weights
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    message = str(info.value)
    assert recorded["sha256"][:19] in message and file_sha256(base_file)[:19] in message
    assert recorded["sha256"] not in message and "--base-weights" in message and "\n" not in message

    loaded = load_model(path, base_weights=str(keep))  # the right base, moved elsewhere
    assert torch.equal(logits(loaded), logits(model))


def test_a_delta_whose_base_is_missing_says_which_and_what_to_do(base_file, tmp_path):
    model = trained("adapter", str(base_file))
    path = save_model(model, tmp_path / "delta.pt")
    moved = tmp_path / "elsewhere.safetensors"
    base_file.rename(moved)
    with pytest.raises(CheckpointError, match=r"base weights '.*tinyface.safetensors', which cannot be loaded .*"
                                             r"put the base weights there, or pass them with --base-weights"):
        load_model(path)
    assert torch.equal(logits(load_model(path, base_weights=str(moved))), logits(model))


def test_delta_keys_that_do_not_fit_are_refused(tmp_path):
    model = trained("lora")
    path = save_model(model, tmp_path / "delta.pt")
    raw = torch.load(path, weights_only=True)
    state = raw["model"]["state_dict"]

    missing = dict(raw, model={**raw["model"], "state_dict": {k: v for k, v in state.items() if k != "temporal.cls_token"}})
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match=r"missing.pt does not fit the model: weights 1 missing \(first: temporal.cls_token\)"):
        load_model(tmp_path / "missing.pt")

    extra = dict(raw, model={**raw["model"], "state_dict": {**state, "image_encoder.nope": torch.zeros(1)}})
    torch.save(extra, tmp_path / "extra.pt")
    with pytest.raises(CheckpointError, match=r"weights 1 unexpected \(first: image_encoder.nope\)"):
        load_model(tmp_path / "extra.pt")

    key = next(k for k in state if "lora_a" in k)
    shaped = dict(raw, model={**raw["model"], "state_dict": {**state, key: torch.zeros(2, 2)}})
    torch.save(shaped, tmp_path / "shaped.pt")
    with pytest.raises(CheckpointError, match=rf"{key} has shape \(2, 2\), expected"):
        load_model(tmp_path / "shaped.pt")

    other = dict(raw, model={**raw["model"], "config": {**raw["model"]["config"], "lora_rank": 2}})
    torch.save(other, tmp_path / "rank.pt")
    with pytest.raises(CheckpointError, match="does not fit the model"):
        load_model(tmp_path / "rank.pt")


def test_non_peft_checkpoints_are_byte_for_byte_as_before(tmp_path):
    model = build_model(ModelConfig(backbone="tinyface", pretrained="world", num_frames=2), TEXTS)
    path = save_model(model, tmp_path / "m.pt", extra={"epoch": 1})
    before = io.BytesIO()  # what save_model wrote before delta checkpoints existed
    torch.save({"format": "dferclip-toolkit", "format_version": 1, "model": model_payload(model), "epoch": 1}, before)
    assert path.read_bytes() == before.getvalue()
    assert model.base_sha256 is None  # no hashing where no checkpoint records it


def test_peft_over_random_weights_keeps_every_weight(tmp_path):
    model = trained("lora", pretrained=None, backbone="tiny")  # no base file to refer to
    path = save_model(model, tmp_path / "m.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format_version"] == FORMAT_VERSION and "base_weights" not in raw["model"]
    assert set(raw["model"]["state_dict"]) == set(model.state_dict())
    assert torch.equal(logits(load_model(path)), logits(model))
