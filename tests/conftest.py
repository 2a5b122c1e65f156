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


@pytest.fixture(autouse=True, scope="session")
def user_data_folder(tmp_path_factory):
    """The per-user data folder (the default descriptor store) is a temporary one: a test that writes a
    set without --store never touches the developer's own store (nor the checkout's shipped sets)."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    patch.delenv("PROMPTKIT_STORE", raising=False)
    yield
    patch.undo()
