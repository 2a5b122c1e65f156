"""Experiment loggers for `trainer run --logger tensorboard|wandb|mlflow`: one small interface.

A `Tracker` receives per-step train loss and learning rates, per-epoch metrics with the test
confusion matrix (as an image), and at the end the run's hyper-parameters with its final UAR / WAR.
Everything is written under the run folder, offline:

- `tensorboard`: event files in `RUN/tensorboard/` (`torch.utils.tensorboard`; the `tracking` extra)
- `wandb`: an offline W&B run in `RUN/wandb/` (offline, silent, no console capture unless the
  user's WANDB_MODE / WANDB_SILENT / WANDB_CONSOLE say otherwise; the `wandb` extra)
- `mlflow`: a SQLite store and artifact folder in `RUN/mlruns/` (telemetry off; the `mlflow` extra)

The same names in all three: `train/loss`, `lr/<group>` (x: global step), `train/epoch_loss`,
`test/uar`, `test/war`, `val/...` and the `test/confusion` image (x: epoch), `final/uar`, `final/war`.
A resumed run (`start_step` > 0) goes on in the same logger run where the library allows it.

`check_logger` runs before the run folder is made: a logger whose package is missing is one clear
ConfigError, and nothing is written.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import logging
import os
import secrets
import string
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Protocol

import numpy as np

from trainer.errors import ConfigError, TrackingError
from trainer.report import confusion_png

# logger -> (the module it imports, the pyproject extra that installs it)
PACKAGES = {"tensorboard": ("tensorboard", "tracking"), "wandb": ("wandb", "wandb"), "mlflow": ("mlflow", "mlflow")}


def check_logger(name: str) -> None:
    """ConfigError naming the install command when the logger's package is not installed."""
    if name == "none":
        return
    if name not in PACKAGES:
        raise ConfigError(f"logger must be one of none, {', '.join(PACKAGES)}; got {name!r}")
    module, extra = PACKAGES[name]
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"the {name} logger needs the {module} package: pip install 'dferclip-toolkit[{extra}]'")


class Tracker(Protocol):
    def log_step(self, step: int, loss: float, lrs: dict[str, float]) -> None: ...
    def log_epoch(self, record: dict[str, Any], classes: tuple[str, ...]) -> None: ...
    def finish(self, config: dict[str, Any], summary: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class NullTracker:
    def log_step(self, step: int, loss: float, lrs: dict[str, float]) -> None:
        pass

    def log_epoch(self, record: dict[str, Any], classes: tuple[str, ...]) -> None:
        pass

    def finish(self, config: dict[str, Any], summary: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


def epoch_scalars(record: dict[str, Any]) -> dict[str, float]:
    """`train/epoch_loss`, `test/uar`, `test/war` (and `val/...`) of one metrics.jsonl record."""
    out = {"train/epoch_loss": float(record["train_loss"])}
    for split in ("test", "val"):
        if split in record:
            out.update({f"{split}/uar": float(record[split]["uar"]), f"{split}/war": float(record[split]["war"])})
    return out


def flat_hparams(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as `section.key` -> int / float / str / bool (lists and None as text)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flat_hparams(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return out


def final_scalars(summary: dict[str, Any]) -> dict[str, float]:
    """`final/uar` and `final/war` of summary.json (the hparams metrics in TensorBoard)."""
    return {"final/uar": float(summary["uar"]), "final/war": float(summary["war"])}


def _confusion(record: dict[str, Any], classes: tuple[str, ...]) -> tuple[bytes, str]:
    title = f"test confusion, epoch {record['epoch']}"
    return confusion_png(record["test"]["confusion"], classes, title), title


def _png_image(png: bytes):
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB")


def _png_array(png: bytes) -> np.ndarray:
    return np.asarray(_png_image(png))  # (H, W, 3) uint8


class TensorBoardTracker:
    """Event files in `RUN/tensorboard/` (hparams in `RUN/tensorboard/hparams/`).

    A resumed run writes a new event file into the same folder; `purge_step` hides the events an
    interrupted attempt wrote after its last checkpoint (step > `start_step`), so steps are not doubled.
    """

    def __init__(self, run_dir: Path, start_step: int = 0) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=start_step + 1)

    def log_step(self, step: int, loss: float, lrs: dict[str, float]) -> None:
        self.writer.add_scalar("train/loss", loss, step)
        for name, lr in lrs.items():
            self.writer.add_scalar(f"lr/{name}", lr, step)

    def log_epoch(self, record: dict[str, Any], classes: tuple[str, ...]) -> None:
        for tag, value in epoch_scalars(record).items():
            self.writer.add_scalar(tag, value, record["epoch"])
        png, _ = _confusion(record, classes)
        self.writer.add_image("test/confusion", _png_array(png), record["epoch"], dataformats="HWC")
        self.writer.flush()

    def finish(self, config: dict[str, Any], summary: dict[str, Any]) -> None:
        self.writer.add_hparams(flat_hparams(config), final_scalars(summary), run_name="hparams")

    def close(self) -> None:
        self.writer.close()


# W&B settings our logger picks unless the user's environment sets them: offline, nothing printed,
# and the process's stdout / stderr left alone (console capture off)
WANDB_DEFAULTS = (("WANDB_MODE", "mode", "offline"), ("WANDB_SILENT", "silent", True), ("WANDB_CONSOLE", "console", "off"))
WANDB_ID_FILE = "dferclip-run-id"  # in RUN/wandb/: the run id a resumed run appends to


def _new_run_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


class WandbTracker:
    """An offline W&B run in `RUN/wandb/offline-run-*` (`wandb sync` uploads it later).

    The run id is kept in `RUN/wandb/dferclip-run-id`: a run resumed from its last.pt opens the same
    id with resume="allow" (offline, W&B writes a second offline-run folder with that id, and
    `wandb sync` uploads the parts in order into one run); a run started again from its first epoch
    gets a new id. Steps use the `step` axis, epoch metrics and the confusion image the `epoch` axis.
    """

    def __init__(self, run_dir: Path, config: dict[str, Any], start_step: int = 0) -> None:
        self.wandb = importlib.import_module("wandb")
        folder = run_dir / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        id_file = folder / WANDB_ID_FILE
        run_id = id_file.read_text().strip() if start_step > 0 and id_file.is_file() else ""
        run_id = run_id or _new_run_id()
        id_file.write_text(run_id + "\n")
        if os.environ.get("WANDB_MODE", "offline") in ("offline", "dryrun"):
            os.environ.setdefault("WANDB_ERROR_REPORTING", "false")  # wandb-core's crash reports go over the network
        settings = self.wandb.Settings(**{key: value for env, key, value in WANDB_DEFAULTS if env not in os.environ})
        # the process-wide settings too: wandb's analytics are set up from them before init reads its own
        # (given to init alone, an offline run still looked up the W&B server's address)
        self.wandb.setup(settings=settings)
        project = None if os.environ.get("WANDB_PROJECT") else "dferclip-toolkit"
        self.run = self.wandb.init(project=project, name=run_dir.name, id=run_id, resume="allow", dir=str(run_dir),
                                   config=config, settings=settings)
        self.run.define_metric("step")
        self.run.define_metric("epoch")
        for pattern in ("train/loss", "lr/*"):
            self.run.define_metric(pattern, step_metric="step")
        for pattern in ("train/epoch_loss", "test/*", "val/*"):
            self.run.define_metric(pattern, step_metric="epoch")
        self.finished = False

    def log_step(self, step: int, loss: float, lrs: dict[str, float]) -> None:
        self.run.log({"train/loss": loss, **{f"lr/{k}": v for k, v in lrs.items()}, "step": step})

    def log_epoch(self, record: dict[str, Any], classes: tuple[str, ...]) -> None:
        png, title = _confusion(record, classes)
        image = self.wandb.Image(_png_image(png), caption=title)
        self.run.log({**epoch_scalars(record), "test/confusion": image, "epoch": record["epoch"]})

    def finish(self, config: dict[str, Any], summary: dict[str, Any]) -> None:
        self.run.summary.update(final_scalars(summary))
        self.finished = True

    def close(self) -> None:
        self.run.finish(exit_code=0 if self.finished else 1)


MLFLOW_EXPERIMENT = "dferclip-toolkit"


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow's own logger at WARNING for the block (unless the user set MLFLOW_LOGGING_LEVEL)."""
    log = logging.getLogger("mlflow")
    level = log.level
    if "MLFLOW_LOGGING_LEVEL" not in os.environ:
        log.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        log.setLevel(level)


class MlflowTracker:
    """A local MLflow store in `RUN/mlruns/`: `mlflow.db` (SQLite: params, metrics) and
    `artifacts/` (the confusion images), through an `MlflowClient` bound to that store (no global
    tracking URI, no active-run state; MLFLOW_TRACKING_URI is not used).

    MLflow's telemetry is switched off (MLFLOW_DISABLE_TELEMETRY=true unless the user set it). A run
    resumed from its last.pt appends to the store's latest run; one started again from its first
    epoch is a new run. The run ends FINISHED, or FAILED when training stopped before the end.
    """

    def __init__(self, run_dir: Path, config: dict[str, Any], start_step: int = 0) -> None:
        if "MLFLOW_DISABLE_TELEMETRY" not in os.environ:
            os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # read when mlflow is imported and when it logs
            telemetry = sys.modules.get("mlflow.telemetry")  # mlflow imported earlier: drop the client it made
            if telemetry is not None and hasattr(telemetry, "set_telemetry_client"):
                telemetry.set_telemetry_client()
        client_module = importlib.import_module("mlflow.tracking")
        self.entities = importlib.import_module("mlflow.entities")
        store = (run_dir / "mlruns").resolve()
        store.mkdir(parents=True, exist_ok=True)
        with _quiet_mlflow():  # its INFO lines on creating the database tables
            self.client = client_module.MlflowClient(tracking_uri=f"sqlite:///{store / 'mlflow.db'}")
            experiment = self.client.get_experiment_by_name(MLFLOW_EXPERIMENT)
            experiment_id = (experiment.experiment_id if experiment is not None else
                             self.client.create_experiment(MLFLOW_EXPERIMENT, artifact_location=(store / "artifacts").as_uri()))
        runs = self.client.search_runs([experiment_id], max_results=1, order_by=["attributes.start_time DESC"])
        if start_step > 0 and runs:
            self.run_id = runs[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            self.run_id = self.client.create_run(experiment_id, run_name=run_dir.name).info.run_id
            params = [self.entities.Param(k, str(v)[:500]) for k, v in flat_hparams(config).items()]  # within every MLflow's limit
            for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(self.run_id, params=params[i:i + 100])
        self.finished = False

    def _metrics(self, values: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[self.entities.Metric(k, float(v), now, step) for k, v in values.items()])

    def log_step(self, step: int, loss: float, lrs: dict[str, float]) -> None:
        self._metrics({"train/loss": loss, **{f"lr/{k}": v for k, v in lrs.items()}}, step)

    def log_epoch(self, record: dict[str, Any], classes: tuple[str, ...]) -> None:
        self._metrics(epoch_scalars(record), record["epoch"])
        png, _ = _confusion(record, classes)
        self.client.log_image(self.run_id, _png_image(png), artifact_file=f"confusion/epoch_{record['epoch']:03d}.png")

    def finish(self, config: dict[str, Any], summary: dict[str, Any]) -> None:
        self._metrics(final_scalars(summary), 0)
        self.finished = True

    def close(self) -> None:
        self.client.set_terminated(self.run_id, status="FINISHED" if self.finished else "FAILED")


def open_tracker(name: str, run_dir: Path, config: dict[str, Any], start_step: int = 0) -> Tracker:
    """The tracker `name` writing under `run_dir` (`none`: one that does nothing).

    `start_step`: the global step the run goes on from (a run resumed from its last.pt), 0 for a
    run from its first step. A library error while opening the logger is one TrackingError.
    """
    check_logger(name)
    run_dir = Path(run_dir)
    try:
        if name == "tensorboard":
            return TensorBoardTracker(run_dir, start_step)
        if name == "wandb":
            return WandbTracker(run_dir, config, start_step)
        if name == "mlflow":
            return MlflowTracker(run_dir, config, start_step)
    except Exception as exc:  # the library's own error types differ per logger and version
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TrackingError(f"cannot open the {name} logger under {run_dir}: {first}") from exc
    return NullTracker()
