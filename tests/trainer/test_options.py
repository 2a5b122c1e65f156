"""The one mapping from command-line options to a RunConfig (trainer run, promptkit compare)."""

from __future__ import annotations

import json

import pytest

from trainer.cli import main
from trainer.config import config_from_dict, resolve_config
from trainer.errors import TrainerError
from trainer.evaluate.compare import resolve_run_config
from trainer.model.config import ModelConfig
from trainer.options import cli_options, config_from_options


def test_model_is_typed_and_a_bad_value_fails_before_any_file(tmp_path, capsys):
    assert isinstance(resolve_config("default").model, ModelConfig)
    out, synth = tmp_path / "run", tmp_path / "synth"
    with pytest.raises(SystemExit) as info:
        main(["run", "--set", "model.n_ctx=-1", "--set", f"data.synth_dir={synth}", "--out", str(out)])
    assert info.value.code == 1
    assert "n_ctx" in capsys.readouterr().err
    assert not out.exists() and not synth.exists()


def test_milestones_take_a_json_list():
    assert resolve_config("default", sets=["optim.milestones=[30,40]"]).optim.milestones == (30, 40)
    assert resolve_config("default", sets=["optim.milestones=[3, 5]"]).optim.milestones == (3, 5)


def test_an_older_config_json_with_some_model_fields_still_loads():
    raw = resolve_config("default").to_dict()
    raw["model"] = {"backbone": "tinyface", "pretrained": "world", "normalize": "clip"}  # what runs before the typed model stored
    again = config_from_dict(json.loads(json.dumps(raw)))
    assert again.model.backbone == "tinyface" and again.model.num_frames == again.data.num_segments
    assert again == resolve_config("default")


def test_trainer_run_and_compare_map_hand_lists_with_a_preset_alike():
    options = cli_options(test_list="t.txt")
    compare = resolve_run_config("dfew", None, options, [], train=False)
    assert compare.data.dataset is None and compare.data.classes == "dfew"
    assert compare.data.test_list == "t.txt" and compare.optim.epochs == 50  # the dfew preset's settings
    run = config_from_options("dfew", None, cli_options(train_list="a.txt", test_list="t.txt"))
    assert run.data.dataset is None and run.data.classes == "dfew"
    with pytest.raises(TrainerError, match="--data-root"):
        config_from_options("dfew", None, cli_options())


def test_a_backbone_given_on_the_command_line_does_not_inherit_another_backbones_weights():
    tiny = config_from_options(None, None, cli_options(backbone="tiny"))
    assert tiny.model.backbone == "tiny" and tiny.model.pretrained is None
    assert config_from_options(None, None, cli_options()).model.pretrained == "world"  # the preset's own
    ours = config_from_options(None, None, cli_options(backbone="tiny", pretrained="/w/tiny.pt"))
    assert ours.model.pretrained == "/w/tiny.pt"
    other = config_from_options("dfew", None, cli_options(backbone="ViT-B-16", data_root="/data"))
    assert other.model.pretrained == "openai"  # a tag ViT-B-16 has too
    made = config_from_options(None, None, cli_options(backbone="ViT-B-32"))
    assert made.model.pretrained is None


def test_trainer_run_with_another_backbone_trains(clips, capsys, tmp_path):
    from cli_runner import trainer_cli

    train, test = clips
    code, _, err = trainer_cli(capsys, "run", "--train-list", train, "--test-list", test, "--epochs", 1, "--batch", 7,
                               "--frames", 2, "--workers", 0, "--quiet", "--backbone", "tiny", "--out", tmp_path / "r")
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "config.json").read_text())["model"]["backbone"] == "tiny"
