"""Helpers for the trainer.data tests: tiny frame folders whose pixels encode the frame number."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_clip(folder: Path, n: int, size: tuple[int, int] = (20, 24), ext: str = "png",
               start: int = 1, width: int = 0) -> Path:
    """Frames `<k>.<ext>` (k = start..start+n-1, zero-padded to `width`) filled with value 10*k."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        k = start + i
        value = min(255, 10 * k)
        img = np.full((size[0], size[1], 3), value, dtype=np.uint8)
        Image.fromarray(img).save(folder / f"{k:0{width}d}.{ext}")
    return folder


@pytest.fixture
def make_clip():
    return write_clip
