"""Sharing a trained model: `trainer export --format hf | onnx`, loading the exported folder anywhere
a checkpoint is taken, `trainer.Predictor`, and the bad inputs of each (one line, non-zero exit)."""

from __future__ import annotations

import builtins
import json
import shutil
from pathlib import Path

import pytest
import torch
from cli_runner import trainer_cli as cli
from test_switches import finished_run

import trainer
from trainer.errors import CheckpointError, ExportError, InputError
from trainer.export import export_model
from trainer.model import ClassTexts, ModelConfig, build_model, save_model
from trainer.model.tinyface import WEIGHTS_NAME, shipped_dir


@pytest.fixture(scope="module")
def run(clips, tmp_path_factory):
    return finished_run(clips, tmp_path_factory, "share")


@pytest.fixture(scope="module")
def hf(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "dfer-tiny"
    export_model(run, "hf", out)
    return out


def frames(model, batch=2, seed=1):
    return torch.rand(batch, 4, 3, model.image_size, model.image_size, generator=torch.Generator().manual_seed(seed))


def test_load_model_takes_a_run_folder(run):
    # issue #20.15: trainer.load_model("runs/x") said "checkpoint runs/x does not exist"
    model = trainer.load_model(run)
    reference = trainer.load_model(run / "best.pt")
    x = frames(model)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_hf_folder_holds_config_weights_and_card_and_loads_anywhere(run, hf, clips, capsys):
    assert sorted(p.name for p in hf.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((hf / "config.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert config["classes"] == summary["classes"] and config["id2label"]["0"] == "happiness"
    assert config["descriptor_set"]["set_id"] == "dfew/v1" and len(config["descriptor_set"]["texts"]) == 7
    assert config["preprocessing"]["image_size"] == 64 and config["preprocessing"]["num_segments"] == 4
    assert config["preprocessing"]["normalize"] == "clip" and config["weights"]["sha256"].startswith("sha256:")
    model, reference = trainer.load_model(hf), trainer.load_model(run)
    with torch.no_grad():
        assert torch.equal(model(frames(model)), reference(frames(model)))
    code, out, _ = cli(capsys, "eval", hf, "--workers", 0, "--device", "cpu")  # the test list its run recorded
    assert code == 0 and f"{summary['war']:.2f}" in out and str(clips[1]) in out
    code, out, _ = cli(capsys, "info", hf, "--json")
    assert code == 0 and json.loads(out)["texts"]["classes"][0] == "happiness"


def test_model_card_states_metrics_data_licence_and_loading(run, hf):
    from huggingface_hub import ModelCard

    summary = json.loads((run / "summary.json").read_text())
    card = ModelCard.load(hf / "README.md")  # the hub's own parser: front matter and model-index
    assert card.data.library_name == "dferclip-toolkit" and card.data.pipeline_tag == "video-classification"
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results == {"uar": round(summary["uar"], 4), "accuracy": round(summary["war"], 4)}
    text = card.text
    assert summary["text"]["test_list"] in text and "(7 clips)" in text and "last epoch" in text
    assert "| fear |" in text and "dfew/v1" in text and "licence applies" in text
    assert 'trainer.Predictor("dfer-tiny")' in text and "crow's feet" in text


def test_peft_delta_exports_with_its_base_merged_in(tmp_path):
    base = tmp_path / "base.safetensors"
    shutil.copy(shipped_dir() / WEIGHTS_NAME, base)
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone="tinyface", pretrained=str(base), num_frames=4, peft="lora"),
                        ClassTexts.from_class_names(["happiness", "sadness", "anger"])).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))  # LoRA deltas away from zero, as after training
    delta = save_model(model, tmp_path / "delta.pt")
    assert "base_weights" in torch.load(delta, weights_only=True)["model"]
    export_model(delta, "hf", tmp_path / "merged")
    base.unlink()  # the export needs no base any more; the delta itself does
    x = frames(model)
    with torch.no_grad():
        assert torch.equal(trainer.load_model(tmp_path / "merged")(x), model(x))
    with pytest.raises(CheckpointError, match="which cannot be loaded .* --base-weights"):
        export_model(delta, "hf", tmp_path / "again")


def test_onnx_export_matches_pytorch_and_predict_runs_it(run, hf, clips, capsys, tmp_path):
    onnx_file = tmp_path / "model.onnx"
    code, out, _ = cli(capsys, "export", hf, "--format", "onnx", "--out", onnx_file)
    assert code == 0 and "max |logit difference| vs PyTorch" in out and "batch sizes 1, 3" in out
    clip = [line.split()[0] for line in open(clips[1])][:3]
    code, out, _ = cli(capsys, "predict", onnx_file, *clip, "--json")
    assert code == 0
    got = json.loads(out)
    expected = trainer.Predictor(run, device="cpu").predict(clip)
    for row, probs in zip(got, expected):
        assert row["prediction"] == max(probs, key=probs.get)
        assert max(abs(row["probabilities"][c] - probs[c]) for c in probs) < 1e-4
    assert onnx_file.stat().st_mode & 0o777 == 0o644  # shared like every other output, not private
    with pytest.raises(CheckpointError, match="ONNX export: only `trainer predict` and trainer.Predictor"):
        trainer.load_model(onnx_file)  # PyTorch is needed there, the graph is not enough
    with pytest.raises(ExportError, match="unknown --format"):
        export_model(hf, "torchscript", tmp_path / "x")


def test_predictor_scores_one_clip_or_a_batch_from_any_source(run, hf, clips):
    clip_list = [line.split()[0] for line in open(clips[1])]
    predictor = trainer.Predictor(hf)
    one = predictor.predict(clip_list[0])
    many = predictor.predict(clip_list)
    assert set(one) == set(predictor.classes) and abs(sum(one.values()) - 1.0) < 1e-5
    assert len(many) == len(clip_list) and many[0] == pytest.approx(one, abs=1e-5)
    assert trainer.Predictor(run / "best.pt").predict(clip_list[0]) == pytest.approx(one, abs=1e-5)


def test_predict_face_crop_json_says_whether_a_face_was_found(run, clips, capsys):
    # issue #20.9: `predict --face-crop --json` did not say whether a face was found and cropped
    clip = [line.split()[0] for line in open(clips[1])][0]
    code, out, _ = cli(capsys, "predict", run, clip, "--face-crop", "--json", "--device", "cpu")
    assert code == 0 and json.loads(out)[0]["face_found"] is False  # drawn cartoon faces: no Haar face
    code, out, _ = cli(capsys, "predict", run, clip, "--face-crop", "--device", "cpu")
    assert code == 0 and "not found" in out
    code, out, _ = cli(capsys, "predict", run, clip, "--json", "--device", "cpu")
    assert "face_found" not in json.loads(out)[0]


def test_predictor_refuses_a_clip_with_too_few_frames(run, clips, tmp_path):
    clip = [line.split()[0] for line in open(clips[1])][0]
    short = tmp_path / "short"
    short.mkdir()
    first = sorted(Path(clip).iterdir())[0]
    shutil.copy(first, short / first.name)
    with pytest.raises(InputError, match=r"has 1 frame; the model samples 4 and takes clips of at least 2"):
        trainer.Predictor(run).predict(short)
    assert len(trainer.Predictor(run, min_frames=1).predict(short)) == 7  # padded, as training does


def _one_line(capsys, *argv, words=()):
    code, _, err = cli(capsys, *argv)
    lines = [x for x in err.splitlines() if x.strip()]
    assert code != 0 and len(lines) == 1 and lines[0].startswith("error:"), err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_bad_export_inputs_give_one_line(run, hf, capsys, tmp_path, monkeypatch):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    _one_line(capsys, "export", empty, "--out", tmp_path / "x", words=("has no checkpoint",))
    _one_line(capsys, "export", run, "--format", "tflite", "--out", tmp_path / "x", words=("unknown --format 'tflite'", "hf, onnx"))
    _one_line(capsys, "export", run, "--format", "onnx", "--out", tmp_path / "x.bin", words=(".onnx",))

    broken = tmp_path / "broken"
    shutil.copytree(hf, broken)
    (broken / "model.safetensors").write_bytes((hf / "model.safetensors").read_bytes()[:-8] + b"\0" * 8)
    _one_line(capsys, "predict", broken, "nowhere", words=("sha256", "changed or damaged"))
    (broken / "model.safetensors").unlink()
    _one_line(capsys, "info", broken, words=("model.safetensors is missing",))
    shutil.copy(hf / "model.safetensors", broken / "model.safetensors")
    (broken / "config.json").unlink()
    _one_line(capsys, "eval", broken, "--test-list", "x.txt", words=("no config.json written by `trainer export`",))

    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    _one_line(capsys, "export", run, "--format", "onnx", "--out", tmp_path / "m.onnx",
              words=("onnxruntime", "dferclip-toolkit[onnx]"))
    assert not (tmp_path / "m.onnx").exists()


def test_trainer_predict_takes_min_frames(run, clips, tmp_path, capsys):
    clip = [line.split()[0] for line in open(clips[1])][0]
    short = tmp_path / "short"
    short.mkdir()
    first = sorted(Path(clip).iterdir())[0]
    shutil.copy(first, short / first.name)
    code, _, err = cli(capsys, "predict", run, short, "--device", "cpu")
    assert code == 1 and "at least 2" in err
    code, out, _ = cli(capsys, "predict", run, short, "--device", "cpu", "--json", "--min-frames", 1)
    assert code == 0 and len(json.loads(out)[0]["probabilities"]) == 7
