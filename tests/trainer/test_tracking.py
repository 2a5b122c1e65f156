"""`trainer run --logger`: TensorBoard event files under the run folder; a missing package is one
clear error before anything is written."""

from __future__ import annotations

import importlib.util

import pytest

from trainer import tracking
from trainer.cli import main
from trainer.data.synthetic import generate
from trainer.errors import ConfigError


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    made = generate(tmp_path_factory.mktemp("synth"), train_per_class=2, test_per_class=1, size=32, seed=0,
                    min_frames=6, max_frames=12)
    return made.train_list, made.test_list


def cli(capsys, *argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    return info.value.code, capsys.readouterr().err


def run_args(clips, out, *extra):
    train, test = clips
    return ["run", "--train-list", train, "--test-list", test, "--epochs", 2, "--batch", 7, "--frames", 4,
            "--workers", 0, "--device", "cpu", "--quiet", "--out", out, *extra]


def test_flat_hparams_and_epoch_scalars():
    flat = tracking.flat_hparams({"seed": 1, "optim": {"milestones": [6], "ema": None}})
    assert flat == {"seed": 1, "optim.milestones": "[6]", "optim.ema": "None"}
    record = {"epoch": 1, "train_loss": 2.0, "test": {"uar": 10.0, "war": 20.0}}
    assert tracking.epoch_scalars(record) == {"train/epoch_loss": 2.0, "test/uar": 10.0, "test/war": 20.0}


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="needs the tracking extra")
def test_tensorboard_logs_steps_epochs_confusion_and_hparams(clips, capsys, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    assert cli(capsys, *run_args(clips, out, "--logger", "tensorboard"))[0] == 0
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    tags = events.Tags()
    assert {"train/loss", "lr/image", "lr/prompt", "test/uar", "test/war", "train/epoch_loss"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]  # 14 train clips, batch 7: 2 steps x 2 epochs
    assert [e.step for e in events.Scalars("test/war")] == [1, 2]
    assert [e.step for e in events.Images("test/confusion")] == [1, 2]
    assert any(p.name.startswith("events") for p in (out / "tensorboard" / "hparams").iterdir())
    # --overwrite removes the logger folder with the other run files
    assert cli(capsys, *run_args(clips, out, "--overwrite"))[0] == 0
    assert not (out / "tensorboard").exists()


@pytest.mark.parametrize("logger, extra", [("wandb", "wandb"), ("mlflow", "mlflow"), ("tensorboard", "tracking")])
def test_a_logger_without_its_package_is_one_error_and_writes_nothing(clips, capsys, tmp_path, monkeypatch, logger, extra):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == logger else real(name, *a))
    with pytest.raises(ConfigError, match=rf"pip install 'dferclip-toolkit\[{extra}\]'"):
        tracking.check_logger(logger)
    code, err = cli(capsys, *run_args(clips, tmp_path / "r", "--logger", logger))
    assert code != 0 and f"the {logger} logger needs the" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_unknown_logger_is_one_line(clips, capsys, tmp_path):
    code, err = cli(capsys, *run_args(clips, tmp_path / "r", "--logger", "neptune"))
    assert code != 0 and "logger must be one of none, tensorboard, wandb, mlflow; got 'neptune'" in err
