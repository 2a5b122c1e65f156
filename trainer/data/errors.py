"""Errors raised by trainer.data: bad list files, missing or unreadable clips, unknown datasets."""

from __future__ import annotations

from trainer.errors import TrainerError


class DataError(TrainerError):
    """Bad input data: a list file, a clip folder, a video or a frame the loader cannot use."""
