"""The method learns in the face world: zero-shot descriptions beat class names with the shipped
tiny face-CLIP, and a short default run learns expression shape (small scale for CI)."""

from __future__ import annotations

import json

import pytest

from trainer.cli import main
from trainer.model.backbone import create_backbone
from trainer.model.config import ModelConfig
from trainer.pretrain.run import world_zero_shot
from trainer.world.clips import HELD_OUT_STYLES


def test_zero_shot_descriptions_beat_class_names_on_the_world():
    clip = create_backbone(ModelConfig(backbone="tinyface", pretrained="world")).clip.eval()
    uar = world_zero_shot(clip, per_class=8, image_size=64, seed=777)["uar"]
    assert uar["descriptions dfew/v1"] >= 45, uar
    assert uar["descriptions dfew/v1"] >= uar["class names"] + 20, uar


@pytest.mark.parametrize("style", HELD_OUT_STYLES)
def test_zero_shot_transfers_to_styles_pretraining_never_saw(style):
    clip = create_backbone(ModelConfig(backbone="tinyface", pretrained="world")).clip.eval()
    uar = world_zero_shot(clip, per_class=6, image_size=64, seed=778, style=style)["uar"]
    # the targets (bench/RESULTS.md measures them on 140 clips); the weights shipped before
    # the world was widened reached 47.6 % on chalk here
    assert uar["descriptions dfew/v1"] >= 60, uar
    assert uar["descriptions dfew/v1"] >= uar["class names"] + 30, uar


@pytest.mark.slow
def test_a_short_default_run_learns_expression_shape(tmp_path):
    out = tmp_path / "run"
    argv = ["run", "--out", str(out), "--quiet", "--epochs", "2", "--set", f"data.synth_dir={tmp_path / 'synth'}",
            "--set", "data.synth_train_per_class=16", "--set", "data.synth_test_per_class=8",
            "--set", "optim.milestones=[]"]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["uar"] >= 50, summary  # chance is 14.3 %
