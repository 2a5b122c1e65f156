"""The issue-11 switches of `trainer run`: parameter counts, label smoothing, class-balanced
sampling, weight EMA and multi-view testing (tiny model, CPU, a few generated clips)."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
from cli_runner import interrupted_at
from cli_runner import trainer_cli as cli
from safetensors.torch import load_file, save_file
from torch import nn

from promptkit.classes import resolve_classes
from promptkit.store import Store, resolve_store_root
from promptkit.tokens import count_tokens

from trainer.cli import main
from trainer.config import parse_views, resolve_config
from trainer.data.annotations import read_annotations
from trainer.data.dataset import VideoClipDataset
from trainer.data.sampling import segment_indices
from trainer.data.transforms import crop_views
from trainer.distributed import EpochSampler
from trainer.ema import WeightEMA
from trainer.engine import class_balanced_weights, parameter_counts
from trainer.errors import ConfigError, ModelConfigError
from trainer.model.checkpoint import DELTA_VERSION, FORMAT_VERSION, load_model, model_from_payload, model_payload, save_model
from trainer.model.config import ModelConfig
from trainer.model.dferclip import build_model
from trainer.model.layer_decay import layer_groups
from trainer.model.peft import apply_peft
from trainer.model.texts import ClassTexts
from trainer.model.tinyface import WEIGHTS_NAME, file_sha256, shipped_dir


def run_args(clips, out, *extra, epochs=1, batch=7):
    train, test = clips
    return ["run", "--train-list", train, "--test-list", test, "--epochs", epochs, "--batch", batch, "--frames", 4,
            "--workers", 0, "--device", "cpu", "--quiet", "--out", out, *extra]


def history(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def finished_run(clips, tmp_path_factory, name: str, *extra):
    """A 1-epoch `trainer run` (the run_args plus `extra`) into a fresh folder, checked to succeed."""
    out = tmp_path_factory.mktemp("runs") / name
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in run_args(clips, out, *extra)])
    assert info.value.code == 0
    return out


@pytest.fixture(scope="module")
def baseline(clips, tmp_path_factory):
    return finished_run(clips, tmp_path_factory, "base")


# ---------------------------------------------------------------------- off by default
def test_every_switch_is_off_in_every_preset():
    for name in ("default", "dfew", "ferv39k", "mafw"):
        sets = [] if name == "default" else ["data.data_root=/nowhere"]
        cfg = resolve_config(name, sets=sets)
        assert cfg.optim.label_smoothing == 0.0 and cfg.optim.ema is None
        assert cfg.data.balanced_sampling is False and cfg.data.views == (1, 1) and cfg.logger == "none"


# ---------------------------------------------------------------------- 1. parameter counts
def test_parameter_counts_split_trainable_from_frozen():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))  # 15 + 8 parameters
    model[0].requires_grad_(False)
    assert parameter_counts(model) == {"trainable_params": 8, "total_params": 23}


def test_summary_records_and_the_run_prints_parameter_counts(baseline, clips, capsys, tmp_path):
    summary = json.loads((baseline / "summary.json").read_text())
    assert 0 < summary["trainable_params"] < summary["total_params"]
    code, _, err = cli(capsys, *run_args(clips, tmp_path / "r"))
    assert code == 0
    assert f"parameters: {summary['trainable_params']:,} trainable of {summary['total_params']:,}" in err


# ---------------------------------------------------------------------- 2. label smoothing
def test_label_smoothing_changes_the_loss_and_is_recorded(baseline, clips, capsys, tmp_path):
    out = tmp_path / "ls"
    assert cli(capsys, *run_args(clips, out, "--label-smoothing", 0.3))[0] == 0
    assert json.loads((out / "config.json").read_text())["optim"]["label_smoothing"] == 0.3
    assert history(out)[0]["train_loss"] != pytest.approx(history(baseline)[0]["train_loss"], rel=1e-6)


@pytest.mark.parametrize("value", ["1", "-0.1", "1.5"])
def test_label_smoothing_out_of_range_is_one_line(clips, capsys, tmp_path, value):
    code, _, err = cli(capsys, *run_args(clips, tmp_path / "bad", "--label-smoothing", value))
    assert code != 0 and "label_smoothing must be in [0, 1)" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


# ---------------------------------------------------------------------- 3. balanced sampling
def test_balanced_sampler_draws_classes_evenly_and_replays():
    labels = [0] * 90 + [1] * 10
    weights = class_balanced_weights(labels)
    sampler = EpochSampler(len(labels), shuffle=True, seed=3, weights=weights)
    drawn = Counter()
    for epoch in range(20):
        sampler.set_epoch(epoch)
        drawn.update(labels[i] for i in sampler)
    assert 0.4 < drawn[1] / sum(drawn.values()) < 0.6  # 10% of the clips, about half of the draws
    sampler.set_epoch(5)
    again = EpochSampler(len(labels), shuffle=True, seed=3, weights=weights)
    again.set_epoch(5)
    assert list(sampler) == list(again)  # a pure function of (seed, epoch): resumes exactly
    shards = [EpochSampler(len(labels), shuffle=True, seed=3, weights=weights, rank=r, world_size=2) for r in (0, 1)]
    for s in shards:
        s.set_epoch(5)
    assert sorted(list(shards[0]) + list(shards[1])) == sorted(again.order())  # ranks split one global draw


def test_balanced_sampling_run(baseline, clips, capsys, tmp_path):
    out = tmp_path / "bal"
    assert cli(capsys, *run_args(clips, out, "--balanced-sampling"))[0] == 0
    assert json.loads((out / "config.json").read_text())["data"]["balanced_sampling"] is True
    assert history(out)[0]["train_loss"] != history(baseline)[0]["train_loss"]  # other clips were drawn


# ---------------------------------------------------------------------- 4. EMA
def test_weight_ema_averages_and_swaps_back():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = WeightEMA(model, 0.75)
    with torch.no_grad():
        model.weight.fill_(4.0)
    ema.update()  # 0.75 * 0 + 0.25 * 4
    with ema.swapped_in():
        assert torch.allclose(model.weight, torch.full((1, 2), 1.0))
    assert torch.allclose(model.weight, torch.full((1, 2), 4.0))


@pytest.mark.parametrize("value", ["0", "1", "1.5"])
def test_ema_outside_zero_one_is_one_line(clips, capsys, tmp_path, value):
    code, _, err = cli(capsys, *run_args(clips, tmp_path / "bad", "--ema", value))
    assert code != 0 and "optim.ema (--ema DECAY) must be in (0, 1)" in err and len(err.strip().splitlines()) == 1


def test_ema_is_evaluated_saved_and_resumed_exactly(clips, capsys, tmp_path, monkeypatch):
    extra = ("--ema", 0.5, "--deterministic", "--ckpt-every-steps", 1, "--text", "classnames")
    straight = tmp_path / "straight"
    assert cli(capsys, *run_args(clips, straight, *extra, epochs=2, batch=2))[0] == 0
    state = torch.load(straight / "last.pt", weights_only=True)
    best = torch.load(straight / "best.pt", weights_only=True)["model"]["state_dict"]
    own = state["model"]["state_dict"]
    shadow = state["ema"]["shadow"]
    assert shadow and all(torch.equal(best[k], v) for k, v in shadow.items())  # best.pt holds the EMA weights
    assert any(not torch.equal(own[k], v) for k, v in shadow.items())  # ... which differ from the raw ones

    killed = tmp_path / "killed"
    with monkeypatch.context() as patch:
        interrupted_at(patch, 4)  # killed mid-epoch 1, after 3 checkpointed steps
        assert cli(capsys, *run_args(clips, killed, *extra, epochs=2, batch=2))[0] == 130  # as Ctrl-C
    assert cli(capsys, "run", "--out", killed, "--resume", "--quiet")[0] == 0
    strip = [{k: v for k, v in rec.items() if k != "train_clips_per_s"} for rec in history(straight)]
    assert [{k: v for k, v in rec.items() if k != "train_clips_per_s"} for rec in history(killed)] == strip
    resumed = torch.load(killed / "last.pt", weights_only=True)["ema"]["shadow"]
    assert all(torch.equal(resumed[k], v) for k, v in shadow.items())


# ---------------------------------------------------------------------- 5. test views
def test_one_view_is_the_authors_middle_frame_and_views_spread_over_segments():
    for n in (3, 16, 37):
        assert np.array_equal(segment_indices(n, 8, view=0, views=1), segment_indices(n, 8))
    views = [segment_indices(40, 4, view=j, views=4) for j in range(4)]
    assert [v.tolist() for v in views] == [[1, 11, 21, 31], [3, 13, 23, 33], [6, 16, 26, 36], [8, 18, 28, 38]]


def test_crop_views_one_is_the_plain_resize_more_are_diagonal_crops():
    clip = [np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8) for _ in range(2)]
    (one,) = crop_views(clip, 32, 1)
    three = crop_views(clip, 32, 3)
    assert one.shape == (2, 3, 32, 32) and all(v.shape == (2, 3, 32, 32) for v in three)
    assert not np.array_equal(three[0], three[2])


@pytest.fixture(scope="module")
def views_run(clips, tmp_path_factory):
    return finished_run(clips, tmp_path_factory, "views", "--test-views", "2x3")


def test_multi_view_items_and_run(clips, views_run):
    records = read_annotations(clips[1], None, num_classes=7)
    ds = VideoClipDataset(records, 32, train=False, num_segments=4, views=(2, 3))
    frames, _ = ds[0]
    assert frames.shape == (6, 4, 3, 32, 32)  # (clips x crops, T, 3, S, S)
    assert json.loads((views_run / "summary.json").read_text())["n_test"] == 7


@pytest.mark.parametrize("spec", ["2", "0x3", "2x0", "axb", "2x3x1", ""])
def test_bad_test_views_are_one_clear_error(spec):
    with pytest.raises(ConfigError, match="CLIPSxCROPS"):
        parse_views(spec)


@pytest.mark.parametrize("spec", ["100x100", "17x1", "1x11"])
def test_test_views_are_bounded(spec):
    with pytest.raises(ConfigError, match="at most 16 clips x 10 crops"):
        parse_views(spec)
    assert parse_views("16x10") == (16, 10)


def test_bad_test_views_on_the_cli(clips, capsys, tmp_path):
    code, _, err = cli(capsys, *run_args(clips, tmp_path / "bad", "--test-views", "3"))
    assert code != 0 and "--test-views takes CLIPSxCROPS" in err and len(err.strip().splitlines()) == 1


def eval_args(checkpoint, clips, *extra):
    return ["eval", checkpoint, "--test-list", clips[1], "--workers", 0, "--device", "cpu", *extra]


def test_eval_with_one_view_gives_the_run_numbers(baseline, clips, capsys, tmp_path):
    summary = json.loads((baseline / "summary.json").read_text())
    results = []
    for extra in ((), ("--test-views", "1x1")):
        code, out, _ = cli(capsys, *eval_args(baseline / "best.pt", clips, *extra, "--out", tmp_path / "e.json"))
        assert code == 0 and "UAR" in out
        results.append(json.loads((tmp_path / "e.json").read_text()))
    assert results[0] == results[1] and results[0]["test_views"] == "1x1"
    assert results[0]["uar"] == pytest.approx(summary["uar"]) and results[0]["war"] == pytest.approx(summary["war"])


def test_eval_and_predict_with_views_match_the_run_with_views(views_run, clips, capsys, tmp_path):
    out = views_run
    summary = json.loads((out / "summary.json").read_text())
    code, text, _ = cli(capsys, *eval_args(out, clips, "--test-views", "2x3", "--out", tmp_path / "e.json"))
    assert code == 0 and "test views 2x3" in " ".join(text.split())
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["test_views"] == "2x3" and result["n_clips"] == 7
    assert result["uar"] == pytest.approx(summary["uar"]) and result["war"] == pytest.approx(summary["war"])
    clip = clips[1].read_text().split()[0]
    code, text, _ = cli(capsys, "predict", out / "best.pt", clip, "--json", "--device", "cpu", "--test-views", "2x3")
    assert code == 0 and sum(json.loads(text)[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("command", ["eval", "predict"])
def test_bad_test_views_on_eval_and_predict_are_the_run_error(baseline, clips, capsys, tmp_path, command):
    run_code, _, run_err = cli(capsys, *run_args(clips, tmp_path / "bad", "--test-views", "3"))
    args = eval_args(baseline, clips) if command == "eval" else ["predict", baseline, clips[1].read_text().split()[0]]
    code, _, err = cli(capsys, *args, "--test-views", "3")
    assert code == run_code != 0 and err == run_err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------- 7. random-words control
def test_random_words_text_source(clips, capsys, tmp_path):
    out = tmp_path / "rw"
    assert cli(capsys, *run_args(clips, out, "--text", "random_words"))[0] == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["text"]["source"] == "random_words" and summary["text"]["set_id"] == "dfew/v1"
    state = torch.load(out / "best.pt", weights_only=True)
    words = state["model"]["texts"]["texts"]
    assert state["model"]["texts"]["source"] == "random_words"
    ds = Store(resolve_store_root(None)).resolve("dfew/v1", "dfew")  # the descriptions it stands in for
    descriptions = [e.description for e in ds.classes]
    assert [count_tokens(w) for w in words] == [count_tokens(d) for d in descriptions]
    assert words != descriptions and summary["text"]["content_hash"] != ds.content_hash


# ---------------------------------------------------------------------- 8. PEFT
def _encoder_pair(peft: str):
    texts = ClassTexts.from_class_names(["a", "b", "c"])
    plain = build_model(ModelConfig(backbone="tinyface", pretrained="world", num_frames=2), texts)
    adapted = build_model(ModelConfig(backbone="tinyface", pretrained="world", num_frames=2, peft=peft), texts)
    return plain, adapted, torch.rand(4, 3, plain.image_size, plain.image_size)


@pytest.mark.parametrize("peft", ["lora", "adapter"])
def test_peft_starts_from_the_pretrained_function_and_trains_only_its_weights(peft):
    plain, adapted, x = _encoder_pair(peft)
    with torch.no_grad():
        assert torch.allclose(plain.image_encoder(x), adapted.image_encoder(x), atol=1e-5)  # zero-initialised deltas
    trainable = [n for n, p in adapted.image_encoder.named_parameters() if p.requires_grad]
    assert trainable and all(("lora_" in n) or (".adapter." in f".{n}") for n in trainable)
    frozen = {n: p.detach().clone() for n, p in adapted.image_encoder.named_parameters() if not p.requires_grad}
    opt = torch.optim.SGD([p for p in adapted.image_encoder.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):  # B (or up) moves on the first step, the whole delta on the second
        opt.zero_grad()
        adapted.image_encoder(x).pow(2).sum().backward()
        opt.step()
    with torch.no_grad():
        assert not torch.allclose(plain.image_encoder(x), adapted.image_encoder(x), atol=1e-5)
    assert all(torch.equal(p, frozen[n]) for n, p in adapted.image_encoder.named_parameters() if n in frozen)
    rebuilt = model_from_payload(model_payload(adapted))  # the normal checkpoint carries the deltas
    with torch.no_grad():
        assert torch.allclose(rebuilt.image_encoder(x), adapted.image_encoder(x), atol=1e-6)


def test_peft_on_an_encoder_it_cannot_wrap_is_one_error():
    with pytest.raises(ModelConfigError, match="cannot adapt the image encoder of backbone 'convnet'"):
        apply_peft(nn.Sequential(nn.Conv2d(3, 4, 3)), "lora", "convnet", rank=2, alpha=4, hidden=4)
    with pytest.raises(ModelConfigError, match="no transformer block or attention pool"):
        apply_peft(nn.Sequential(nn.Conv2d(3, 4, 3)), "adapter", "convnet", rank=2, alpha=4, hidden=4)
    with pytest.raises(ModelConfigError, match="mode 'linear_probe' does not train it"):
        ModelConfig(mode="linear_probe", peft="lora")


@pytest.fixture(scope="module")
def lora_run(clips, tmp_path_factory):
    return finished_run(clips, tmp_path_factory, "lora", "--peft", "lora")


def test_peft_run_trains_fewer_parameters(baseline, lora_run, clips, capsys, tmp_path):
    lora, base = (json.loads((d / "summary.json").read_text()) for d in (lora_run, baseline))
    assert lora["trainable_params"] < base["trainable_params"] and lora["total_params"] > base["total_params"]
    code, _, err = cli(capsys, *run_args(clips, tmp_path / "bad", "--peft", "prefix"))
    assert code != 0 and "peft must be one of none, lora, adapter" in err


def test_peft_best_checkpoint_is_a_small_delta_that_eval_reads(lora_run, clips, capsys, tmp_path):
    best = torch.load(lora_run / "best.pt", weights_only=True)
    last = torch.load(lora_run / "last.pt", weights_only=True)
    assert best["format_version"] == DELTA_VERSION and best["model"]["base_weights"]["pretrained"] == "world"
    assert last["format_version"] == FORMAT_VERSION and "base_weights" not in last["model"]  # resumes from full weights
    full = tmp_path / "full.pt"
    torch.save({**best, "format_version": FORMAT_VERSION, "model": last["model"]}, full)
    assert (lora_run / "best.pt").stat().st_size < full.stat().st_size / 3
    model = load_model(lora_run / "best.pt")
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in last["model"]["state_dict"].items())  # select last: same weights

    summary = json.loads((lora_run / "summary.json").read_text())
    code, out, _ = cli(capsys, *eval_args(lora_run / "best.pt", clips, "--out", tmp_path / "e.json"))
    assert code == 0 and "UAR" in out
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["uar"] == pytest.approx(summary["uar"]) and result["war"] == pytest.approx(summary["war"])
    code, out, _ = cli(capsys, "info", lora_run / "best.pt")
    assert code == 0 and "a lora delta over the base weights world (sha256:" in " ".join(out.split())


def test_a_delta_without_its_base_is_one_line_on_the_cli(clips, capsys, tmp_path):
    base = tmp_path / "base.safetensors"
    shutil.copy(shipped_dir() / WEIGHTS_NAME, base)
    texts = ClassTexts.from_class_names(list(resolve_classes("dfew").classes))
    model = build_model(ModelConfig(backbone="tinyface", pretrained=str(base), num_frames=4, peft="lora",
                                    normalize="clip"), texts)
    delta = save_model(model, tmp_path / "delta.pt")
    moved = tmp_path / "moved.safetensors"
    base.rename(moved)
    code, _, err = cli(capsys, *eval_args(delta, clips))
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert f"over the base weights '{base}', which cannot be loaded" in err and "--base-weights" in err
    code, out, _ = cli(capsys, *eval_args(delta, clips, "--base-weights", moved))
    assert code == 0 and "UAR" in out
    shutil.copy(moved, base)
    weights = load_file(str(base))
    weights["logit_scale"] = weights["logit_scale"] + 1
    save_file(weights, str(base))
    code, _, err = cli(capsys, *eval_args(delta, clips))
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert model.base_sha256[:19] in err and file_sha256(base)[:19] in err


def test_peft_run_resumes_exactly(clips, capsys, tmp_path, monkeypatch):
    extra = ("--peft", "adapter", "--deterministic", "--ckpt-every-steps", 1)
    straight = tmp_path / "straight"
    assert cli(capsys, *run_args(clips, straight, *extra, epochs=2))[0] == 0
    killed = tmp_path / "killed"
    with monkeypatch.context() as patch:
        interrupted_at(patch, 3)  # killed at the first step of epoch 2
        assert cli(capsys, *run_args(clips, killed, *extra, epochs=2))[0] == 130
    assert cli(capsys, "run", "--out", killed, "--resume", "--quiet")[0] == 0
    strip = [{k: v for k, v in rec.items() if k != "train_clips_per_s"} for rec in history(straight)]
    assert [{k: v for k, v in rec.items() if k != "train_clips_per_s"} for rec in history(killed)] == strip
    a, b = (torch.load(d / "best.pt", weights_only=True)["model"]["state_dict"] for d in (straight, killed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------- 9. layer-wise lr decay, mixup
def test_layer_groups_decay_with_depth():
    texts = ClassTexts.from_class_names(["a", "b", "c"])
    model = build_model(ModelConfig(backbone="tiny", num_frames=2), texts)  # a 2-block ViT
    groups = layer_groups(model.image_encoder, 1.0, 0.5)
    assert [(g["name"], g["lr"]) for g in groups] == [("image.l0", 0.125), ("image.l1", 0.25), ("image.l2", 0.5), ("image.l3", 1.0)]
    names = {id(p): n for n, p in model.image_encoder.named_parameters()}
    assert all(names[id(p)].startswith("transformer.resblocks.1.") for p in groups[2]["params"])
    assert sum(len(g["params"]) for g in groups) == len(list(model.image_encoder.parameters()))


def test_layer_decay_and_mixup_runs(baseline, clips, capsys, tmp_path):
    out = tmp_path / "lld"
    assert cli(capsys, *run_args(clips, out, "--layer-decay", 0.5, "--set", "optim.optimizer=adamw"))[0] == 0
    lrs = history(out)[0]["lr"]
    assert "image" not in lrs and lrs["image.l5"] == pytest.approx(2 * lrs["image.l4"]) and "temporal" in lrs
    out = tmp_path / "mix"
    assert cli(capsys, *run_args(clips, out, "--mixup", 0.4))[0] == 0
    assert history(out)[0]["train_loss"] != history(baseline)[0]["train_loss"]
    for flag, value, message in (("--mixup", "-1", "optim.mixup"), ("--layer-decay", "1.5", "optim.layer_decay")):
        code, _, err = cli(capsys, *run_args(clips, tmp_path / "bad", flag, value))
        assert code != 0 and message in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------- 1-2. negatives, several descriptions
def test_negatives_and_multi_descriptions_run_from_a_set_that_has_them(clips, capsys, tmp_path):
    out = tmp_path / "neg"
    code, _, err = cli(capsys, *run_args(clips, out, "--descriptions", "dfew/v2", "--negatives", "--negative-weight", "0.3",
                                         "--multi-descriptions"))
    assert code == 0, err
    config = json.loads((out / "config.json").read_text())["model"]
    assert config["negatives"] and config["negative_weight"] == 0.3 and config["multi_descriptions"]
    texts = torch.load(out / "best.pt", weights_only=True)["model"]["texts"]
    ds = Store(resolve_store_root(None)).resolve("dfew/v2", "dfew")
    assert texts["negatives"] == [e.negative.description for e in ds.classes]
    assert texts["variants"] == [list(e.variants) for e in ds.classes]
    assert json.loads((out / "summary.json").read_text())["text"]["set_id"] == "dfew/v2"


@pytest.mark.parametrize("extra,message", [
    (["--negatives"], "--negatives: set dfew/v1 has no negative descriptions: generate one with `promptkit generate --negatives`"),
    (["--multi-descriptions"], "--multi-descriptions: set dfew/v1 has no variants (several descriptions per class)"),
    (["--negatives", "--text", "classnames"], "--negatives needs a descriptor set that has them"),
    (["--negatives", "--negative-weight", "-1"], "negative_weight must be a number in [0, 10]"),
    (["--negative-weight", "0.3"], "--negative-weight weighs the negative descriptions of --negatives; give --negatives too"),
])
def test_negatives_and_multi_descriptions_refusals_are_one_line(clips, capsys, tmp_path, extra, message):
    out = tmp_path / "bad"
    code, _, err = cli(capsys, *run_args(clips, out, "--descriptions", "dfew/v1", *extra))
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (out / "last.pt").exists()
