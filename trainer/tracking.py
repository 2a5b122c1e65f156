"""Experiment loggers for `trainer run --logger tensorboard|wandb|mlflow`: one small interface.

A `Tracker` receives per-step train loss and learning rates, per-epoch metrics with the test
confusion matrix (as an image), and at the end the run's hyper-parameters with its final UAR / WAR.
Everything is written under the run folder, offline:

- `tensorboard`: event files in `RUN/tensorboard/` (`torch.utils.tensorboard`; the `tracking` extra)
- `wandb`: an offline W&B run in `RUN/wandb/` (WANDB_MODE=offline unless set; the `wandb` extra)
- `mlflow`: a file store in `RUN/mlruns/` (the `mlflow` extra)

`check_logger` runs before the run folder is made: a logger whose package is missing is one clear
ConfigError, and nothing is written.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from trainer.errors import ConfigError
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


def _confusion(record: dict[str, Any], classes: tuple[str, ...]) -> tuple[bytes, str]:
    title = f"test confusion, epoch {record['epoch']}"
    return confusion_png(record["test"]["confusion"], classes, title), title


def _png_array(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))  # (H, W, 3) uint8


class TensorBoardTracker:
    def __init__(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

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
        self.writer.add_hparams(flat_hparams(config), {"hparam/uar": summary["uar"], "hparam/war": summary["war"]},
                                run_name="hparams")

    def close(self) -> None:
        self.writer.close()


class WandbTracker:
    def __init__(self, run_dir: Path, config: dict[str, Any]) -> None:
        os.environ.setdefault("WANDB_MODE", "offline")
        self.wandb = importlib.import_module("wandb")
        self.run = self.wandb.init(project="dferclip-toolkit", name=run_dir.name, dir=str(run_dir), config=config)

    def log_step(self, step: int, loss: float, lrs: dict[str, float]) -> None:
        self.run.log({"train/loss": loss, **{f"lr/{k}": v for k, v in lrs.items()}, "step": step})

    def log_epoch(self, record: dict[str, Any], classes: tuple[str, ...]) -> None:
        png, title = _confusion(record, classes)
        image = self.wandb.Image(_png_array(png), caption=title)
        self.run.log({**epoch_scalars(record), "test/confusion": image, "epoch": record["epoch"]})

    def finish(self, config: dict[str, Any], summary: dict[str, Any]) -> None:
        self.run.summary.update({"uar": summary["uar"], "war": summary["war"]})

    def close(self) -> None:
        self.run.finish()


class MlflowTracker:
    def __init__(self, run_dir: Path, config: dict[str, Any]) -> None:
        self.mlflow = importlib.import_module("mlflow")
        self.mlflow.set_tracking_uri((run_dir / "mlruns").resolve().as_uri())
        self.mlflow.start_run(run_name=run_dir.name)
        self.mlflow.log_params({k: str(v)[:250] for k, v in flat_hparams(config).items()})

    def log_step(self, step: int, loss: float, lrs: dict[str, float]) -> None:
        self.mlflow.log_metrics({"train_loss": loss, **{f"lr_{k}": v for k, v in lrs.items()}}, step=step)

    def log_epoch(self, record: dict[str, Any], classes: tuple[str, ...]) -> None:
        scalars = {tag.replace("/", "_"): value for tag, value in epoch_scalars(record).items()}
        self.mlflow.log_metrics(scalars, step=record["epoch"])
        png, _ = _confusion(record, classes)
        self.mlflow.log_image(_png_array(png), f"confusion_epoch{record['epoch']}.png")

    def finish(self, config: dict[str, Any], summary: dict[str, Any]) -> None:
        self.mlflow.log_metrics({"final_uar": summary["uar"], "final_war": summary["war"]})

    def close(self) -> None:
        self.mlflow.end_run()


def open_tracker(name: str, run_dir: Path, config: dict[str, Any]) -> Tracker:
    """The tracker `name` writing under `run_dir` (`none`: one that does nothing)."""
    check_logger(name)
    if name == "tensorboard":
        return TensorBoardTracker(Path(run_dir))
    if name == "wandb":
        return WandbTracker(Path(run_dir), config)
    if name == "mlflow":
        return MlflowTracker(Path(run_dir), config)
    return NullTracker()
