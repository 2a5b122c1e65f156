"""Training with clip texts (`trainer run --clip-texts`): align and fuse, the coverage rules, and
what evaluation and prediction do with such models (tiny synthetic clips, CPU)."""

from __future__ import annotations

import json

import pytest
import torch
from cli_runner import interrupted_at
from cli_runner import trainer_cli as cli

from promptkit.cliptexts import ClipTextStore

from trainer.cliptexts import align_loss
from trainer.data.annotations import clip_id, read_annotations


def run_args(clips, out, store, *extra):
    train, test = clips
    return ["run", "--train-list", train, "--test-list", test, "--epochs", 1, "--batch", 7, "--frames", 4,
            "--workers", 0, "--device", "cpu", "--quiet", "--out", out, "--store", store, *extra]


def ids(list_path) -> list[tuple[str, int]]:
    return [(clip_id(r.path, list_path), r.label) for r in read_annotations(list_path)]


WORDS = ("brows raised", "lip corners pulled up", "eyes narrowed", "mouth open", "nose wrinkled", "lips pressed",
         "jaw dropped")


@pytest.fixture(scope="module")
def store(clips, tmp_path_factory):
    """A store with `world/v1` (every clip, the first train clip recorded as missing) and `trainonly/v1`."""
    root = tmp_path_factory.mktemp("store")
    train, test = clips
    texts = {cid: f"{WORDS[label]} across the frames" for cid, label in ids(train) + ids(test)}
    first = ids(train)[0][0]
    missing = {first: "refusal"}
    del texts[first]
    cts = ClipTextStore(root)
    cts.add("world", texts, missing, {"source": "test"})
    cts.add("trainonly", {cid: f"{WORDS[label]}" for cid, label in ids(train)}, {}, {"source": "test"})
    return root


def test_align_adds_the_auxiliary_loss_and_says_what_it_did(clips, store, capsys, tmp_path):
    code, _, err = cli(capsys, *run_args(clips, tmp_path / "plain", store))
    assert code == 0
    code, _, err = cli(capsys, *run_args(clips, tmp_path / "align", store, "--clip-texts", "world",
                                         "--clip-text-weight", "2"))
    assert code == 0, err
    assert "1 of 14 train clips have none in world/v1" in err and "left out of the auxiliary loss" in err
    plain = json.loads((tmp_path / "plain" / "metrics.jsonl").read_text().splitlines()[0])
    align = json.loads((tmp_path / "align" / "metrics.jsonl").read_text().splitlines()[0])
    assert align["train_loss"] > plain["train_loss"]  # the contrastive term is part of the loss
    summary = json.loads((tmp_path / "align" / "summary.json").read_text())
    assert summary["clip_texts"]["set_id"] == "world/v1" and summary["clip_texts"]["mode"] == "align"
    # an align model classifies from frames alone: eval needs no texts, and refuses to be given some
    assert cli(capsys, "eval", tmp_path / "align", "--device", "cpu", "--workers", 0)[0] == 0
    code, _, err = cli(capsys, "eval", tmp_path / "plain", "--device", "cpu", "--workers", 0, "--clip-texts", "world",
                       "--store", store)
    assert code != 0 and "trained without clip texts" in err and len(err.strip().splitlines()) == 1


def test_fuse_needs_texts_for_the_test_clips_and_eval_reads_them(clips, store, capsys, tmp_path):
    out = tmp_path / "fuse"
    code, _, err = cli(capsys, *run_args(clips, out, store, "--clip-texts", "world", "--clip-text-mode", "fuse"))
    assert code == 0, err
    run_uar = json.loads((out / "summary.json").read_text())["uar"]
    code, stdout, err = cli(capsys, "eval", out, "--device", "cpu", "--workers", 0, "--store", store,
                            "--out", tmp_path / "e.json")
    assert code == 0, err
    assert json.loads((tmp_path / "e.json").read_text())["uar"] == pytest.approx(run_uar)
    code, _, err = cli(capsys, "eval", out, "--device", "cpu", "--workers", 0, "--store", store, "--test-views", "2x2")
    assert code == 0, err  # each view of a clip is fused with that clip's text
    code, _, err = cli(capsys, "eval", out, "--device", "cpu", "--workers", 0, "--store", store,
                       "--clip-texts", "trainonly")
    assert code != 0 and "trainonly/v1 has no entry for 7 of the 7 clips of the test list" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, "predict", out, str(read_annotations(clips[1])[0].path), "--device", "cpu")
    assert code != 0 and "fuses clip texts" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, "export", out, "--format", "onnx", "--out", tmp_path / "m.onnx")
    assert code != 0 and "fuses clip texts" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()
    assert cli(capsys, "export", out, "--format", "hf", "--out", tmp_path / "hf")[0] == 0
    assert "| clip texts | `world` (fuse, weight 0.5): fused with the video feature" in (tmp_path / "hf" / "README.md").read_text()


def test_a_set_for_other_clips_is_one_line(clips, store, capsys, tmp_path):
    code, _, err = cli(capsys, *run_args(clips, tmp_path / "r", store, "--clip-texts", "trainonly",
                                         "--clip-text-mode", "fuse"))
    assert code != 0 and "no entry for 7 of the 7 clips of the test list" in err and "describe-clips" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = cli(capsys, *run_args(clips, tmp_path / "r2", store, "--clip-texts", "nosuchset"))
    assert code != 0 and "nosuchset" in err and len(err.strip().splitlines()) == 1


def test_clip_texts_with_mixup_or_a_bad_mode_is_one_line(clips, store, capsys, tmp_path):
    code, _, err = cli(capsys, *run_args(clips, tmp_path / "m", store, "--clip-texts", "world", "--mixup", "0.2"))
    assert code != 0 and "--mixup or --clip-texts" in err and not (tmp_path / "m").exists()
    code, _, err = cli(capsys, *run_args(clips, tmp_path / "b", store, "--clip-texts", "world",
                                         "--clip-text-mode", "concat"))
    assert code != 0 and "clip_text_mode" in err and not (tmp_path / "b").exists()


def test_resume_refuses_other_clip_texts(clips, store, capsys, tmp_path):
    out, cts = tmp_path / "r", ClipTextStore(store)
    world = cts.load("world")
    cts.add("resumed", dict(world.texts), dict(world.missing), {"source": "test"})
    assert cli(capsys, *run_args(clips, out, store, "--clip-texts", "resumed"))[0] == 0
    cts.add("resumed", {k: v + " again" for k, v in world.texts.items()}, dict(world.missing), {"source": "test"})
    code, _, err = cli(capsys, *run_args(clips, out, store, "--clip-texts", "resumed", "--resume", "--epochs", 2))
    assert code != 0 and "other clip texts" in err


def test_align_loss_pulls_matching_pairs_and_skips_clips_without_text():
    text = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)  # (4, E)
    has = torch.tensor([True, True, True, False])
    matched = align_loss(text * 3, text, has, 10.0)
    shuffled = align_loss(text[[1, 2, 0, 3]] * 3, text, has, 10.0)
    assert matched < shuffled
    assert align_loss(torch.randn(4, 8), text, torch.tensor([True, False, False, False]), 10.0) == 0


def test_a_run_with_clip_texts_killed_mid_epoch_resumes_exactly(clips, store, capsys, tmp_path, monkeypatch):
    extra = ("--clip-texts", "world", "--deterministic", "--ckpt-every-steps", 1, "--batch", 2, "--epochs", 2)
    straight = tmp_path / "straight"
    assert cli(capsys, *run_args(clips, straight, store, *extra))[0] == 0
    killed = tmp_path / "killed"
    with monkeypatch.context() as patch:
        interrupted_at(patch, 4)  # killed mid-epoch 1, after 3 checkpointed steps
        assert cli(capsys, *run_args(clips, killed, store, *extra))[0] == 130
    assert cli(capsys, "run", "--out", killed, "--resume", "--quiet", "--store", store)[0] == 0

    def metrics(out):
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in row.items() if k != "train_clips_per_s"} for row in rows]

    assert metrics(killed) == metrics(straight)  # the same clips met the same texts in the same steps
