"""Engine building blocks: the resumable sharded sampler, gathering, metrics records, checkpoints, reports."""

from __future__ import annotations

import csv
import errno
import json
import random

import numpy as np
import pytest
import torch

from trainer import report
from trainer.distributed import DistContext, EpochSampler, gather_outputs
from trainer.model import checkpoint as ckpt
from trainer.scoring import split_metrics


# ---------------------------------------------------------------- sampler
def test_epoch_order_depends_only_on_seed_and_epoch():
    a = EpochSampler(50, shuffle=True, seed=3)
    b = EpochSampler(50, shuffle=True, seed=3)
    torch.manual_seed(0)
    a.set_epoch(2)
    first = list(a)
    torch.manual_seed(123)  # global RNG state must not matter
    b.set_epoch(2)
    assert list(b) == first
    b.set_epoch(3)
    assert list(b) != first
    assert sorted(first) == list(range(50))


@pytest.mark.parametrize("world, batch", [(2, 8), (4, 8), (2, 6)])
def test_ranks_split_each_global_batch(world, batch):
    n = 45
    single = EpochSampler(n, shuffle=True, seed=1, drop_last_multiple=batch)
    single.set_epoch(5)
    order = list(single)
    assert len(order) == (n // batch) * batch
    shards = []
    for rank in range(world):
        s = EpochSampler(n, shuffle=True, seed=1, rank=rank, world_size=world, drop_last_multiple=batch)
        s.set_epoch(5)
        shards.append(list(s))
    per_rank = batch // world
    for step in range(len(order) // batch):
        union = sorted(i for shard in shards for i in shard[step * per_rank:(step + 1) * per_rank])
        assert union == sorted(order[step * batch:(step + 1) * batch])


def test_eval_sampler_pads_and_gather_drops_duplicates():
    n, world = 7, 2
    outputs, indices = [], []
    for rank in range(world):
        s = EpochSampler(n, shuffle=False, seed=0, rank=rank, world_size=world)
        idx = torch.tensor(list(s))
        indices.append(idx)
        outputs.append(torch.stack([idx.float(), -idx.float()], dim=1))  # (N_r, 2)
    assert sum(len(i) for i in indices) == 8  # one padding duplicate
    idx, out = gather_outputs(torch.cat(indices), torch.cat(outputs), DistContext())
    assert idx.tolist() == list(range(n))
    assert out[:, 0].tolist() == [float(i) for i in range(n)]


def test_sampler_skip_resumes_inside_an_epoch():
    from types import SimpleNamespace

    from trainer.data.dataset import EpochTagged

    s = EpochSampler(20, shuffle=True, seed=9)
    s.set_epoch(1)
    full = list(s)
    dataset = SimpleNamespace(epoch=1, start_index=6)  # what dataset.set_epoch(1, start_index=6) leaves
    tagged = EpochTagged(s, dataset)
    assert list(tagged) == [(i, 1) for i in full[6:]] and len(tagged) == 14
    dataset.epoch, dataset.start_index = 2, 0
    assert len(list(tagged)) == 20 and len(tagged) == 20


# ---------------------------------------------------------------- metrics record
def test_split_metrics_against_a_naive_count():
    rng = np.random.default_rng(0)
    n_classes = 4
    labels = rng.integers(0, 3, size=40).tolist()  # class 3 never occurs
    logits = torch.tensor(rng.normal(size=(40, n_classes)), dtype=torch.float32)
    rec = split_metrics(logits, labels, n_classes)
    pred = logits.argmax(1).tolist()
    war = 100 * sum(p == t for p, t in zip(pred, labels)) / len(labels)
    recalls = []
    for c in range(3):
        members = [p for p, t in zip(pred, labels) if t == c]
        recalls.append(100 * sum(p == c for p in members) / len(members))
    assert rec["war"] == pytest.approx(war)
    assert rec["uar"] == pytest.approx(sum(recalls) / 3)
    assert rec["per_class_recall"][:3] == pytest.approx(recalls) and rec["per_class_recall"][3] is None
    assert sum(map(sum, rec["confusion"])) == 40
    json.dumps(rec)  # serialisable: no NaN, no numpy types


# ---------------------------------------------------------------- checkpoints
def _state(value: float) -> dict:
    return {"format": ckpt.FORMAT, "format_version": ckpt.FORMAT_VERSION, "kind": "run", "w": torch.tensor([value])}


def test_checkpoint_round_trip_and_kind_check(tmp_path):
    path = ckpt.save_checkpoint(_state(1.0), tmp_path / "last.pt")
    assert ckpt.load_checkpoint(path, kind="run")["w"].item() == 1.0
    with pytest.raises(ckpt.CheckpointError, match="expected a model checkpoint"):
        ckpt.load_checkpoint(path, kind="model")
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp files left


def test_no_space_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = ckpt.save_checkpoint(_state(1.0), tmp_path / "last.pt")

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(ckpt.CheckpointError) as info:
        ckpt.save_checkpoint(_state(2.0), path)
    message = str(info.value)
    assert "no space left" in message and "previous checkpoint kept" in message
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["w"].item() == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_foreign_and_corrupt_files_are_refused(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ckpt.CheckpointError, match="not a dferclip-toolkit checkpoint"):
        ckpt.load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ckpt.CheckpointError, match="cannot read checkpoint"):
        ckpt.load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(ckpt.CheckpointError, match="not found"):
        ckpt.load_checkpoint(tmp_path / "missing.pt")


def test_rng_state_round_trip(tmp_path):
    state = ckpt.rng_state()
    expected = (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)])
    ckpt.save_checkpoint({**_state(0.0), "rng": state}, tmp_path / "r.pt")
    ckpt.set_rng_state(ckpt.load_checkpoint(tmp_path / "r.pt")["rng"])
    assert (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]) == expected


# ---------------------------------------------------------------- reports
def _record(epoch: int, war: float) -> dict:
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "lr": {"image": 0.1},
            "test": {"uar": war - 1, "war": war, "per_class_recall": [war, None], "confusion": [[3, 1], [0, 0]]}}


def test_reports_write_files(tmp_path):
    history = [_record(1, 50.0), _record(2, 75.0)]
    report.write_metrics_jsonl(tmp_path / "metrics.jsonl", history)
    assert report.read_metrics_jsonl(tmp_path / "metrics.jsonl") == history
    report.write_confusion(tmp_path, [[3, 1], [0, 2]], ["joy", "fear"])
    rows = list(csv.reader((tmp_path / "confusion.csv").open()))
    assert rows == [["true\\pred", "joy", "fear"], ["joy", "3", "1"], ["fear", "0", "2"]]
    report.write_curves(tmp_path, history)
    for name in ("confusion.png", "curves.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    summary = report.build_summary(history, 2, "best-test-war", ["joy", "fear"])
    assert summary["war"] == 75.0 and summary["selected_epoch"] == 2
    assert summary["selection"] == "best test WAR (authors' rule, optimistic)"


def test_protocol_rows_mean_and_sample_std(tmp_path):
    results = [{"fold": f, "seed": s, "uar": 10.0 * f, "war": 20.0 * f} for f in (1, 2, 3) for s in (1,)]
    rows, agg = report.protocol_rows(results)
    assert agg["uar"]["mean"] == pytest.approx(20.0) and agg["uar"]["std"] == pytest.approx(10.0)
    report.write_protocol_csv(tmp_path / "p.csv", results)
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "fold,seed,uar,war" and lines[-2].startswith("mean,,20.0000,40.0000")


def test_a_peft_run_at_the_presets_image_lr_is_told_it_barely_moves():
    from trainer.config import resolve_config
    from trainer.engine import peft_lr_note

    assert peft_lr_note(resolve_config("default", options={"model": {"peft": "lora"}})).startswith("note: --peft lora")
    assert "--lr-image 0.05" in peft_lr_note(resolve_config("default", options={"model": {"peft": "lora"}}))
    assert peft_lr_note(resolve_config("default", options={"model": {"peft": "lora"}, "optim": {"lr_image": 5e-2}})) is None
    assert peft_lr_note(resolve_config("default")) is None
