"""The errors of trainer, under the toolkit's one root (`promptkit.errors.ToolkitError`), which
the console scripts catch once to print one line.

Every trainer error class is defined here (and only here); the modules that raise them import them
from this file (`trainer.model.errors` and `trainer.data.errors` only re-export their part).
"""

from __future__ import annotations

from promptkit.errors import ToolkitError

_WORKER_PREFIX = "Caught DataError in DataLoader worker process"


class TrainerError(ToolkitError):
    """Base class: every error trainer raises on bad input, bad checkpoints or bad data."""


# ---------------------------------------------------------------------- run configuration and inputs
class ConfigError(TrainerError):
    """A run configuration value is invalid or cannot be parsed."""


class InputError(TrainerError):
    """Inputs that do not fit: the run's class counts, lists and texts, or frames handed to the
    model with the wrong shape, dtype or size."""


class DataError(TrainerError):
    """Bad input data: a list file, a clip folder, a video or a frame the loader cannot use.

    A DataError raised inside a DataLoader worker comes back to the main process rebuilt from a
    message holding the worker's whole traceback; the message is cut back to its own one line.
    """

    def __init__(self, message: str = "") -> None:
        if isinstance(message, str) and message.startswith(_WORKER_PREFIX):
            last = message.rstrip().splitlines()[-1]
            message = last.split("DataError: ", 1)[-1]
        super().__init__(message)


# ---------------------------------------------------------------------- model
class ModelConfigError(TrainerError):
    """A model setting is out of range or settings contradict each other."""


class BackboneError(TrainerError):
    """An open_clip backbone name is unknown, or its weights are missing or do not fit."""


class TextsError(TrainerError):
    """Class texts do not fit the model: wrong class count, over the token budget, empty."""


class CheckpointError(TrainerError):
    """A checkpoint file cannot be written or read, is of another kind, or does not fit the model."""


# ---------------------------------------------------------------------- training and its outputs
class TrainingStopped(TrainerError):
    """Training cannot go on (a non-finite loss); the last good checkpoint is kept."""


class DistributedError(TrainerError):
    """The distributed setup is inconsistent (bad environment, batch not divisible, ...)."""


class MetricsError(TrainerError):
    """Bad inputs to a metric: shapes that differ or labels outside the class range."""


class ReportError(TrainerError):
    """A run file (json, csv, png) cannot be written."""


class ExportError(TrainerError):
    """A model cannot be exported (`trainer export`) or an export cannot be run (ONNX runtime absent)."""


class TrackingError(TrainerError):
    """An experiment logger (`--logger tensorboard|wandb|mlflow`) cannot be opened."""


class PretrainError(TrainerError):
    """`trainer pretrain` cannot start, or its output cannot be written."""


class EvalError(TrainerError):
    """An evaluation command (compare, embed, interpret) cannot run on its input."""
