"""`promptkit interpret` through the CLI on tiny checkpoints whose contexts are planted token embeddings.

A context vector set to a token's embedding must come back as that token with cosine 1 (L2 0).
"""

from __future__ import annotations

import json

import pytest
from cli_runner import run_cli as promptkit

CLASSES = ("happiness", "sadness", "anger")


def token_id(word: str) -> int:
    from promptkit.tokens import encode_text

    (only,) = encode_text(word)
    return only


def save_run(folder, *, pretrained=None, class_specific=True, mode="dfer", plant=None):
    """A run folder with best.pt of a tiny model; `plant(model)` edits the contexts first."""
    import torch

    from trainer.model import ClassTexts, ModelConfig, build_model, save_model

    torch.manual_seed(0)
    cfg = ModelConfig(backbone="tiny", pretrained=pretrained, class_specific=class_specific, mode=mode, num_frames=2)
    model = build_model(cfg, ClassTexts.from_class_names(CLASSES))
    if plant is not None:
        with torch.no_grad():
            plant(model)
    save_model(model, folder / "best.pt")
    return folder


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A tiny backbone's weights on disk, so the full token-embedding table can be read back."""
    import torch

    from trainer.evaluate.embed import load_backbone

    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    torch.save(load_backbone("tiny", None, seed=3).clip.state_dict(), path)
    return path


def test_full_vocabulary_finds_the_planted_token(weights, tmp_path):
    import torch

    full = torch.load(weights, weights_only=True)["token_embedding.weight"]  # (49408, 64)

    def plant(model):
        model.prompt_learner.ctx[0, 2] = full[token_id("smile")]
        model.prompt_learner.ctx[2, 7] = full[token_id("eyes")]

    run = save_run(tmp_path / "run", pretrained=str(weights), plant=plant)
    result = promptkit("interpret", run, "--top-k", "3")
    assert result.code == 0, result.err
    data = json.loads((run / "interpret.json").read_text())
    assert data["vocabulary"].startswith("full (49406 tokens)") and data["vocabulary_size"] == 49406
    assert [c["class"] for c in data["contexts"]] == list(CLASSES)
    smile = data["contexts"][0]["positions"][2][0]
    eyes = data["contexts"][2]["positions"][7][0]
    assert (smile["token"], eyes["token"]) == ("smile", "eyes")
    assert smile["score"] == pytest.approx(1.0, abs=1e-5) and eyes["score"] == pytest.approx(1.0, abs=1e-5)
    assert data["contexts"][0]["reading"].split()[2] == "smile"
    csv_lines = (run / "interpret.csv").read_text().splitlines()
    assert csv_lines[0] == "class,position,rank,token,token_id,cosine" and len(csv_lines) == 1 + 3 * 8 * 3
    assert "smile (1.00)" in result.out and "happiness: reads as" in result.out


def test_without_weights_the_class_text_tokens_are_the_vocabulary(tmp_path):
    def plant(model):
        learner = model.prompt_learner
        learner.ctx[1, 0] = learner.embeddings[1, 1]  # the first text token of class 1: "sadness"

    run = save_run(tmp_path / "run", plant=plant)
    out = tmp_path / "reading.csv"
    result = promptkit("interpret", run / "best.pt", "--metric", "l2", "--top-k", "2", "--out", out)
    assert result.code == 0, result.err
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["vocabulary"].startswith("class texts only") and data["vocabulary_size"] == 4  # 3 names + "."
    top = data["contexts"][1]["positions"][0][0]
    assert top["token"] == "sadness" and top["score"] == pytest.approx(0.0, abs=1e-4)
    assert out.read_text().startswith("class,position,rank,token,token_id,l2")


def test_a_generic_context_reads_as_one_shared_row(tmp_path):
    run = save_run(tmp_path / "run", class_specific=False)
    result = promptkit("interpret", run, "--json", "--out", tmp_path / "o")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["class_specific"] is False and [c["class"] for c in data["contexts"]] == ["shared"]
    assert (tmp_path / "o" / "interpret.json").is_file() and (tmp_path / "o" / "interpret.csv").is_file()


def one_error_line(result, *fragments):
    assert result.code != 0
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_folder_without_checkpoint(tmp_path):
    one_error_line(promptkit("interpret", tmp_path), str(tmp_path), "no checkpoint")


def test_model_without_learned_context(tmp_path):
    run = save_run(tmp_path / "run", mode="zeroshot")
    one_error_line(promptkit("interpret", run), "no learned context")


def test_weights_the_run_was_not_trained_with(weights, tmp_path):
    import torch

    from trainer.evaluate.embed import load_backbone

    other = tmp_path / "other.pt"
    torch.save(load_backbone("tiny", None, seed=4).clip.state_dict(), other)
    run = save_run(tmp_path / "run", pretrained=str(weights))
    one_error_line(promptkit("interpret", run, "--pretrained", other), "not the ones this run was trained with")


def test_bad_options(tmp_path):
    run = save_run(tmp_path / "run")
    one_error_line(promptkit("interpret", run, "--metric", "dot"), "--metric")
    one_error_line(promptkit("interpret", run, "--out", tmp_path / "x.txt"), "--out")


def test_negative_contexts_are_read_too(tmp_path):
    import torch

    from trainer.model import ClassTexts, ModelConfig, build_model, save_model

    torch.manual_seed(0)
    texts = ClassTexts(CLASSES, ("happiness.", "sadness.", "anger."), negatives=("anger.", "happiness.", "sadness."))
    model = build_model(ModelConfig(backbone="tiny", num_frames=2, negatives=True), texts)
    with torch.no_grad():
        model.negative_learner.ctx[0, 0] = model.negative_learner.embeddings[0, 1]  # "anger", class 0's negative
    save_model(model, tmp_path / "best.pt")
    out = tmp_path / "reading.csv"
    result = promptkit("interpret", tmp_path / "best.pt", "--out", out)
    assert result.code == 0, result.err
    contexts = json.loads(out.with_suffix(".json").read_text())["contexts"]
    assert [c["class"] for c in contexts] == [*CLASSES, *(f"{c} (negative)" for c in CLASSES)]
    top = contexts[3]["positions"][0][0]
    assert top["token"] == "anger" and top["score"] == pytest.approx(1.0, abs=1e-4)


def test_a_peft_delta_whose_base_moved_reads_with_pretrained(tmp_path):
    import shutil

    import torch

    from trainer.model import ClassTexts, ModelConfig, build_model, save_model
    from trainer.model.tinyface import WEIGHTS_NAME, shipped_dir

    base = tmp_path / "base.safetensors"
    shutil.copy(shipped_dir() / WEIGHTS_NAME, base)
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone="tinyface", pretrained=str(base), num_frames=2, peft="lora"),
                        ClassTexts.from_class_names(CLASSES))
    save_model(model, tmp_path / "best.pt")
    moved = base.rename(tmp_path / "moved.safetensors")
    lost = promptkit("interpret", tmp_path / "best.pt", "--out", tmp_path / "a.json")
    assert lost.code != 0 and len(lost.err.strip().splitlines()) == 1, lost.err
    assert "--pretrained PATH" in lost.err and "--base-weights" not in lost.err  # interpret has no --base-weights
    found = promptkit("interpret", tmp_path / "best.pt", "--pretrained", moved, "--out", tmp_path / "b.json")
    assert found.code == 0, found.err
    assert [c["class"] for c in json.loads((tmp_path / "b.json").read_text())["contexts"]] == list(CLASSES)
