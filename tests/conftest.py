"""Shared fixtures for the promptkit and trainer tests."""

from __future__ import annotations

import os

# Tests never reach the internet: open_clip / Hugging Face must resolve weights locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
