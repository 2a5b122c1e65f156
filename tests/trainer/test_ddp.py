"""DDP through torchrun on CPU: 2 gloo processes give the metrics of 1 process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from trainer.cli import main
from trainer.data.synthetic import generate


@pytest.fixture(scope="module")
def clip_lists(tmp_path_factory):
    made = generate(tmp_path_factory.mktemp("synth"), train_per_class=2, test_per_class=1, size=32, seed=2,
                    min_frames=6, max_frames=12)
    return made.train_list, made.test_list


def run_args(clip_lists, out):
    train, test = clip_lists
    # 14 train clips, global batch 4 -> 3 steps per epoch (the last 2 clips dropped); 7 test clips
    # -> the second rank's evaluation shard is padded with a duplicate that the gather must drop.
    return ["run", "--train-list", str(train), "--test-list", str(test), "--text", "classnames",
            "--epochs", "2", "--batch", "4", "--frames", "4", "--workers", "0", "--device", "cpu",
            "--deterministic", "--quiet", "--out", str(out), "--set", "data.augment=light"]


def _history(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_gloo_processes_match_one_process(clip_lists, tmp_path):
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "trainer", *run_args(clip_lists, ddp_dir)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with pytest.raises(SystemExit) as info:
        main(run_args(clip_lists, single_dir))
    assert info.value.code == 0

    ddp, single = _history(ddp_dir), _history(single_dir)
    assert len(ddp) == len(single) == 2
    for a, b in zip(ddp, single):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert sum(map(sum, a["test"]["confusion"])) == 7  # every test clip once, padding dropped
        assert a["test"]["confusion"] == b["test"]["confusion"]
    summary = json.loads((ddp_dir / "summary.json").read_text())
    assert summary["world_size"] == 2
    wa = torch.load(ddp_dir / "best.pt", weights_only=True)["model"]["state_dict"]
    wb = torch.load(single_dir / "best.pt", weights_only=True)["model"]["state_dict"]
    for key in wa:
        assert torch.allclose(wa[key], wb[key], rtol=1e-3, atol=1e-5), key
    assert not list(ddp_dir.glob("*.tmp")) and (ddp_dir / "last.pt").is_file()
