"""The error trainer.data raises, re-exported from `trainer.errors` (where every one is defined)."""

from trainer.errors import DataError

__all__ = ["DataError"]
