"""Shared fixtures for the promptkit and trainer tests."""

from __future__ import annotations

import os

import pytest

# Tests never reach the internet: open_clip / Hugging Face must resolve weights locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """Rich tables at full width, so assertions on CLI output never meet a wrapped cell."""
    monkeypatch.setenv("COLUMNS", "250")
