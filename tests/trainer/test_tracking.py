"""`trainer run --logger tensorboard|wandb|mlflow`: what each logger writes under the run folder,
read back with the logger's own reader; a resumed run goes on in the same logger run; nothing
reaches for the network; a missing package is one clear error before anything is written.

The read-back tests run where the extras are installed (`pip install -e '.[tracking,wandb,mlflow]'`)
and are skipped elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_runner import trainer_cli as cli

from trainer import tracking
from trainer.errors import ConfigError, TrackingError

needs_tensorboard = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="needs the tracking extra")
needs_wandb = pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="needs the wandb extra")
needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="needs the mlflow extra")


def run_args(clips, out, *extra):
    train, test = clips
    return ["run", "--train-list", train, "--test-list", test, "--epochs", 2, "--batch", 7, "--frames", 4,
            "--workers", 0, "--device", "cpu", "--quiet", "--out", out, *extra]


# `trainer run` in a child process that records every host name it looks up, or IP address it connects
# to, until it exits (wandb's analytics, MLflow's telemetry would do it from background threads and
# at exit), and refuses them; with STOP_AT set, the run stops itself at that training step
GUARDED_RUN = textwrap.dedent(
    """
    import os, sys

    def guard(event, args):
        if event == "socket.getaddrinfo" or (event == "socket.connect" and isinstance(args[1], tuple)):
            with open(os.environ["NET_LOG"], "a") as log:
                log.write(f"{event} {args[1:] if event == 'socket.connect' else args[:2]}\\n")
            raise OSError("the tracking tests reach for no network")

    sys.addaudithook(guard)
    from trainer.commands import run_view
    from trainer.errors import TrainingStopped

    stop_at, steps = int(os.environ.get("STOP_AT", "0")), []

    def step(self, clips, loss, lrs):
        steps.append(loss)
        if len(steps) == stop_at:
            raise TrainingStopped(f"stopped by the test at step {stop_at}")

    run_view.QuietProgress.step = step
    from trainer import cli
    cli.main(sys.argv[1:])
    """
)
ROOT = Path(__file__).resolve().parents[2]


def guarded_run(tmp_path, argv, stop_at=0, drop_env=()):
    """Exit code and stderr of `trainer ARGV` in a child process; asserts it looked up no host."""
    net_log = tmp_path / f"net-{len(list(tmp_path.glob('net-*')))}.log"
    env = {k: v for k, v in os.environ.items() if k not in drop_env}
    env.update(NET_LOG=str(net_log), STOP_AT=str(stop_at), HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", GUARDED_RUN, *map(str, argv)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert not net_log.exists(), net_log.read_text()
    return proc.returncode, proc.stdout, proc.stderr


def interrupted_then_resumed(tmp_path, clips, out, logger, drop_env=()):
    """A 2-epoch run (2 steps an epoch) stopped at step 4: last.pt is epoch 1's (step 2) and step 3 was
    already logged; `--resume` then trains epoch 2 again (steps 3, 4) and finishes. Both in child
    processes that reach for no network."""
    code, _, err = guarded_run(tmp_path, run_args(clips, out, "--logger", logger), stop_at=4, drop_env=drop_env)
    assert code != 0 and "stopped by the test at step 4" in err, err[-3000:]
    code, out_text, err = guarded_run(tmp_path, ["run", "--out", out, "--resume", "--quiet"], drop_env=drop_env)
    assert code == 0, err[-3000:]
    assert "wandb:" not in out_text + err and "INFO mlflow" not in err  # the loggers print nothing themselves
    return json.loads((out / "summary.json").read_text())


def test_flat_hparams_epoch_and_final_scalars():
    flat = tracking.flat_hparams({"seed": 1, "optim": {"milestones": [6], "ema": None}})
    assert flat == {"seed": 1, "optim.milestones": "[6]", "optim.ema": "None"}
    record = {"epoch": 1, "train_loss": 2.0, "test": {"uar": 10.0, "war": 20.0}}
    assert tracking.epoch_scalars(record) == {"train/epoch_loss": 2.0, "test/uar": 10.0, "test/war": 20.0}
    assert tracking.final_scalars({"uar": 10.0, "war": 20.0, "epoch": 2}) == {"final/uar": 10.0, "final/war": 20.0}


@needs_tensorboard
def test_tensorboard_logs_steps_epochs_confusion_and_hparams_and_resumes(clips, capsys, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    out = tmp_path / "tb"
    summary = interrupted_then_resumed(tmp_path, clips, out, "tensorboard")
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    tags = events.Tags()
    assert {"train/loss", "lr/image", "lr/prompt", "test/uar", "test/war", "train/epoch_loss"} <= set(tags["scalars"])
    # 14 train clips, batch 7: 2 steps x 2 epochs; the interrupted attempt's step 3 is purged, not doubled
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [e.step for e in events.Scalars("lr/image")] == [1, 2, 3, 4]
    assert [e.step for e in events.Scalars("test/war")] == [1, 2]
    assert [e.step for e in events.Scalars("train/epoch_loss")] == [1, 2]
    assert [e.step for e in events.Images("test/confusion")] == [1, 2]
    assert events.Images("test/confusion")[-1].encoded_image_string.startswith(b"\x89PNG")
    hparams = EventAccumulator(str(out / "tensorboard" / "hparams")).Reload()
    assert hparams.Scalars("final/uar")[0].value == pytest.approx(summary["uar"])
    start = plugin_data_pb2.HParamsPluginData.FromString(hparams.PluginTagToContent("hparams")["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["optim.epochs"].number_value == 2
    assert start.session_start_info.hparams["logger"].string_value == "tensorboard"
    # --overwrite removes the logger folder with the other run files
    assert cli(capsys, *run_args(clips, out, "--overwrite"))[0] == 0
    assert not (out / "tensorboard").exists()


def wandb_records(run_folder) -> list[dict]:
    """The records of one offline run's .wandb file, read by wandb's own `wandb leet inspect --json`."""
    proc = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(run_folder)],
                          env={**os.environ, "WANDB_MODE": "offline"}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def _has_wandb_leet() -> bool:
    spec = importlib.util.find_spec("wandb")
    return spec is not None and any((Path(p) / "cli" / "leet.py").is_file() for p in spec.submodule_search_locations or ())


@needs_wandb
@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None and not _has_wandb_leet(),
                    reason="reads the run back with `wandb leet inspect`, which this wandb lacks (verified with 0.31.0)")
def test_wandb_writes_an_offline_run_with_history_config_and_confusion_and_resumes_its_id(clips, tmp_path):
    out = tmp_path / "wb"
    summary = interrupted_then_resumed(tmp_path, clips, out, "wandb",
                                       drop_env=("WANDB_MODE", "WANDB_SILENT", "WANDB_CONSOLE", "WANDB_PROJECT", "WANDB_ERROR_REPORTING"))
    run_id = (out / "wandb" / tracking.WANDB_ID_FILE).read_text().strip()
    parts = sorted((out / "wandb").glob("offline-run-*"))  # the interrupted attempt, then the resumed one
    assert len(parts) == 2 and all(p.name.endswith(f"-{run_id}") for p in parts)
    first, second = (wandb_records(p) for p in parts)

    def of(records, kind):
        return [r[kind] for r in records if r["type"] == kind]

    assert [r["exit_code"] for r in of(first, "exit")] == [1] and [r["exit_code"] for r in of(second, "exit")] == [0]
    history = [h["item"] for h in of(first, "history") + of(second, "history")]
    assert [h["step"] for h in history if "train/loss" in h] == [1, 2, 3, 3, 4]  # step 3: once per attempt
    assert all({"lr/image", "lr/prompt"} <= set(h) for h in history if "train/loss" in h)
    epochs = [h for h in history if "epoch" in h]
    assert [h["epoch"] for h in epochs] == [1, 2]
    assert {"train/epoch_loss", "test/uar", "test/war"} <= set(epochs[-1])
    assert epochs[-1]["test/war"] == pytest.approx(summary["war"])
    image = epochs[-1]["test/confusion.path"]
    assert (parts[1] / "files" / image).read_bytes().startswith(b"\x89PNG")
    axes = {m.get("name", m.get("glob_name")): m.get("step_metric") for m in of(second, "metric")}
    assert axes["train/loss"] == "step" and axes["lr/*"] == "step" and axes["test/*"] == "epoch"
    run = of(second, "run")[0]
    assert run["run_id"] == run_id and run["project"] == "dferclip-toolkit"
    assert run["config"]["update"]["optim"]["epochs"] == 2 and run["config"]["update"]["logger"] == "wandb"
    finals = {k: v for s in of(second, "summary") for k, v in s["update"].items() if k.startswith("final/")}
    assert finals == pytest.approx({"final/uar": summary["uar"], "final/war": summary["war"]})
    assert not of(second, "output_raw")  # the CLI's own output is not captured into the run


@needs_mlflow
def test_mlflow_writes_params_metrics_and_confusion_images_to_a_local_store_and_resumes_its_run(clips, tmp_path):
    from mlflow.tracking import MlflowClient

    out = tmp_path / "ml"
    summary = interrupted_then_resumed(tmp_path, clips, out, "mlflow", drop_env=("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "CI", "PYTEST_CURRENT_TEST"))
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(tracking.MLFLOW_EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id])  # the resumed run went on in the same MLflow run
    assert run.info.status == "FINISHED" and run.info.run_name == "ml"
    assert run.data.params["optim.epochs"] == "2" and run.data.params["logger"] == "mlflow"
    assert run.data.params["optim.milestones"] == "[6]"

    def steps(key):
        return sorted(m.step for m in client.get_metric_history(run.info.run_id, key))

    assert steps("train/loss") == [1, 2, 3, 3, 4]  # MLflow's history is append-only: step 3 once per attempt
    assert steps("lr/image") == [1, 2, 3, 3, 4]
    assert steps("test/war") == steps("test/uar") == steps("train/epoch_loss") == [1, 2]
    assert run.data.metrics["final/uar"] == pytest.approx(summary["uar"])
    assert run.data.metrics["final/war"] == pytest.approx(summary["war"])
    images = [a.path for a in client.list_artifacts(run.info.run_id, "confusion")]
    assert images == ["confusion/epoch_001.png", "confusion/epoch_002.png"]
    local = client.download_artifacts(run.info.run_id, "confusion/epoch_002.png", str(tmp_path))
    assert open(local, "rb").read(4) == b"\x89PNG"
    assert str(out / "mlruns" / "artifacts") in experiment.artifact_location  # nothing outside the run folder


@needs_tensorboard
def test_a_logger_that_cannot_open_is_one_tracking_error(tmp_path):
    (tmp_path / "tensorboard").write_text("a file where the event folder goes")
    with pytest.raises(TrackingError, match=r"^cannot open the tensorboard logger under "):
        tracking.open_tracker("tensorboard", tmp_path, {})


@pytest.mark.parametrize("logger, extra", [("wandb", "wandb"), ("mlflow", "mlflow"), ("tensorboard", "tracking")])
def test_a_logger_without_its_package_is_one_error_and_writes_nothing(clips, capsys, tmp_path, monkeypatch, logger, extra):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == logger else real(name, *a))
    with pytest.raises(ConfigError, match=rf"pip install 'dferclip-toolkit\[{extra}\]'"):
        tracking.check_logger(logger)
    code, _, err = cli(capsys, *run_args(clips, tmp_path / "r", "--logger", logger))
    assert code != 0 and f"the {logger} logger needs the" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_unknown_logger_is_one_line(clips, capsys, tmp_path):
    code, _, err = cli(capsys, *run_args(clips, tmp_path / "r", "--logger", "neptune"))
    assert code != 0 and "logger must be one of none, tensorboard, wandb, mlflow; got 'neptune'" in err
