"""Run config: presets carry the paper's settings, overrides resolve in order, bad values name themselves."""

from __future__ import annotations

import json

import pytest

from trainer.config import ConfigError, apply_set, config_from_dict, preset, resolve_config
from trainer.errors import TrainerError


@pytest.mark.parametrize("name", ["dfew", "ferv39k", "mafw"])
def test_paper_presets(name):
    cfg = resolve_config(name, options={"data": {"data_root": "/data"}})
    o = cfg.optim
    assert (o.epochs, o.batch, o.momentum, o.weight_decay, o.milestones, o.gamma) == (50, 48, 0.9, 1e-4, (30, 40), 0.1)
    assert (o.lr_image, o.lr_temporal, o.lr_prompt) == (1e-5, 1e-2, 1e-3)
    assert cfg.precision == "fp32" and cfg.select == "last"
    assert cfg.model.backbone == "ViT-B-32" and cfg.model.quick_gelu is True
    assert cfg.data.dataset == name and cfg.data.augment == name and cfg.data.num_segments == 16


def test_default_preset_is_the_face_world_with_the_shipped_tinyface():
    cfg = resolve_config("default")
    assert cfg.data.synthetic and cfg.model.backbone == "tinyface" and cfg.model.pretrained == "world"
    assert cfg.data.synth_size >= 96 and cfg.data.synth_style == "cartoon"
    assert cfg.text.source == "descriptions" and cfg.text.descriptions == "dfew/v1"


def test_override_order_preset_file_options_set(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"optim": {"epochs": 7, "batch": 12}, "seed": 5}))
    cfg = resolve_config("default", f, {"optim": {"epochs": 3, "lr_image": None}}, ["optim.epochs=4", "seed=9"])
    assert cfg.optim.epochs == 4  # --set beats the option, which beats the file
    assert cfg.optim.batch == 12  # from the file
    assert cfg.seed == 9
    assert cfg.optim.lr_image == preset("default")["optim"]["lr_image"]  # None options are skipped


def test_set_coerces_to_field_types():
    raw = preset("default")
    raw = apply_set(raw, "optim.milestones=3,5")
    raw = apply_set(raw, "optim.clip_grad=null")
    raw = apply_set(raw, "deterministic=yes")
    raw = apply_set(raw, "model.n_ctx=4")
    raw = apply_set(raw, "model.ctx_init=a photo of")
    cfg = config_from_dict(raw)
    assert cfg.optim.milestones == (3, 5) and cfg.optim.clip_grad is None and cfg.deterministic is True
    assert cfg.model.n_ctx == 4 and cfg.model.ctx_init == "a photo of"


@pytest.mark.parametrize(
    "assignment, words",
    [
        ("optim.epochs=many", ["optim.epochs", "'many'"]),
        ("optim.bogus=1", ["unknown config key optim.bogus"]),
        ("select=best", ["select", "'best'"]),
        ("optim.batch=0", ["optim.batch", "0"]),
        ("optim.milestones=40,30", ["milestones", "[40, 30]"]),
        ("precision=fp8", ["precision", "'fp8'"]),
        ("optim.optimizer=adam", ["optim.optimizer", "'adam'"]),
        ("noequals", ["key=value"]),
    ],
)
def test_bad_values_are_named(assignment, words):
    with pytest.raises(ConfigError) as info:
        resolve_config("default", sets=[assignment])
    message = str(info.value)
    assert isinstance(info.value, TrainerError)
    for word in words:
        assert word in message


def test_dataset_needs_root_and_valid_fold():
    with pytest.raises(ConfigError, match="--data-root"):
        resolve_config("dfew")
    with pytest.raises(ConfigError, match="1..1"):
        resolve_config("ferv39k", options={"data": {"data_root": "/d", "fold": 2}})


def test_lists_come_in_pairs():
    with pytest.raises(ConfigError, match="--test-list"):
        resolve_config("default", options={"data": {"train_list": "a.txt"}})


def test_model_fields_are_validated_by_model_config():
    # validated when the config is resolved (RunConfig.model is a typed ModelConfig), before any run file
    with pytest.raises(TrainerError, match="sideways"):
        resolve_config("default", sets=["model.position=sideways"])


def test_config_round_trips_through_json():
    cfg = resolve_config("mafw", options={"data": {"data_root": "/d"}}, sets=["optim.accum_steps=2"])
    again = config_from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.to_dict() == cfg.to_dict()


def test_missing_or_broken_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        resolve_config("default", tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(ConfigError, match="not valid JSON"):
        resolve_config("default", bad)
    bad.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ConfigError, match="not UTF-8"):
        resolve_config("default", bad)
    with pytest.raises(ConfigError, match="cannot read config file"):
        resolve_config("default", tmp_path)  # a folder


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"seed": "abc"}, ["seed must be an integer", "'abc'"]),
        ({"optim": 5}, ["optim must be a mapping", "5"]),
        ({"data": None}, ["data must be a mapping"]),
        ({"optim": {"epochs": True}}, ["optim.epochs must be an integer"]),
        ({"optim": {"gamma": "0.1"}}, ["optim.gamma must be a number"]),
        ({"deterministic": "yes"}, ["deterministic must be true or false"]),
    ],
)
def test_wrong_types_in_a_config_file_are_named(tmp_path, raw, words):
    f = tmp_path / "c.json"
    f.write_text(json.dumps(raw))
    with pytest.raises(ConfigError) as info:
        resolve_config("default", f)
    for word in words:
        assert word in str(info.value)
