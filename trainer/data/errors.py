"""Errors raised by trainer.data: bad list files, missing or unreadable clips, unknown datasets."""

from __future__ import annotations

from trainer.errors import TrainerError

_WORKER_PREFIX = "Caught DataError in DataLoader worker process"


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
