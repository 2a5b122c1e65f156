"""Errors raised by trainer.model: all are TrainerError, so the CLI prints one line for each."""

from __future__ import annotations

from trainer.errors import TrainerError


class ModelConfigError(TrainerError):
    """A model setting is out of range or settings contradict each other."""


class BackboneError(TrainerError):
    """An open_clip backbone name is unknown, or its weights are missing or do not fit."""


class TextsError(TrainerError):
    """Class texts do not fit the model: wrong class count, over the token budget, empty."""


class CheckpointError(TrainerError):
    """A checkpoint file is unreadable, of another kind, or does not fit the model."""


class InputError(TrainerError):
    """Frames handed to the model have the wrong shape, dtype or size."""
