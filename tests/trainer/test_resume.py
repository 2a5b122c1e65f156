"""A run SIGKILLed mid-epoch and resumed ends with exactly the metrics of an uninterrupted run.

The killed run is a real `trainer run` in a subprocess that kills itself with SIGKILL from inside
the training loop (after the checkpoint of step 3 of epoch 1 is on disk, before step 4 is saved),
so the interruption lands mid-epoch every time. CPU, deterministic mode, workers 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from trainer.cli import main
from trainer.data.synthetic import generate

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from trainer.commands import run_view

    class Killer(run_view.QuietProgress):
        steps = 0

        def step(self, clips, loss, lrs):
            Killer.steps += 1
            if Killer.steps == 4:  # last.pt of step 3 is on disk; step 4 is not saved yet
                os.kill(os.getpid(), signal.SIGKILL)

    run_view.QuietProgress = Killer
    from trainer import cli
    cli.main(sys.argv[1:])
    """
)


@pytest.fixture(scope="module")
def clip_lists(tmp_path_factory):
    made = generate(tmp_path_factory.mktemp("synth"), train_per_class=2, test_per_class=1, size=32, seed=1,
                    min_frames=6, max_frames=12)
    return made.train_list, made.test_list


def run_args(clip_lists, out):
    train, test = clip_lists
    return ["run", "--train-list", str(train), "--test-list", str(test), "--text", "classnames",
            "--epochs", "2", "--batch", "2", "--frames", "4", "--workers", "0", "--device", "cpu",
            "--deterministic", "--ckpt-every-steps", "1", "--quiet", "--out", str(out),
            "--set", "data.augment=light"]


def _cli(argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


def _comparable(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("checkpoint",):
        summary.pop(key)
    history = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for rec in history:
        rec.pop("train_clips_per_s")
    return summary, history


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(clip_lists, tmp_path):
    killed = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", KILLER, *run_args(clip_lists, killed)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    state = torch.load(killed / "last.pt", weights_only=True)
    assert (state["epoch"], state["step_in_epoch"]) == (0, 3)  # mid-epoch 1 of 2 (7 steps per epoch)
    assert not (killed / "summary.json").exists()

    assert _cli(["run", "--out", str(killed), "--resume", "--quiet"]) == 0
    straight = tmp_path / "straight"
    assert _cli(run_args(clip_lists, straight)) == 0

    resumed_summary, resumed_history = _comparable(killed)
    straight_summary, straight_history = _comparable(straight)
    assert resumed_history == straight_history  # train loss, lrs, per-epoch test metrics: identical
    assert resumed_summary == straight_summary
    a = torch.load(killed / "best.pt", weights_only=True)["model"]["state_dict"]
    b = torch.load(straight / "best.pt", weights_only=True)["model"]["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_folder_without_a_run(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert _cli(["run", "--out", str(tmp_path / "empty"), "--resume"]) == 1
    assert "nothing to resume" in capsys.readouterr().err
