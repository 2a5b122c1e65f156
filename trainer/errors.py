"""The one error hierarchy of trainer. The CLI catches TrainerError once and prints one line."""


class TrainerError(Exception):
    """Base class: every error trainer raises on bad input, bad checkpoints or bad data."""
