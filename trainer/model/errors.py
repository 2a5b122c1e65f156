"""The errors trainer.model raises, re-exported from `trainer.errors` (where every one is defined)."""

from trainer.errors import BackboneError, CheckpointError, InputError, ModelConfigError, TextsError, TrainerError

__all__ = ["BackboneError", "CheckpointError", "InputError", "ModelConfigError", "TextsError", "TrainerError"]
