"""Clips as JPEG images for a vision LLM (`promptkit describe-clips`).

The clips of one or more lists are read the trainer's way (`read_annotations`, then a test-mode
`VideoClipDataset`: folders of frames and videos, `frames` segments, the middle frame of each), so a
clip's images are the frames its evaluation sees. Every clip is checked before anything is asked:
a missing or unreadable clip fails the whole call with one line. Each frame is scaled so its longer
side is at most `image_size` (never enlarged) and encoded as JPEG.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

from PIL import Image

from promptkit.classes import CLIP_TEXTS_FOLDER

from trainer.data.annotations import clip_id, read_annotations
from trainer.errors import DataError

JPEG_QUALITY = 90
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 4096


@dataclass
class ClipImages:
    """(clip id, load) pairs for `promptkit.describe.describe_clips`, and what each list held."""

    sources: list[tuple[str, Callable[[], list[bytes]]]]
    lists: list[dict]  # {"list": file name, "clips": count} per list, in order


def clip_images(lists: Sequence[Path | str], data_root: Path | str | None, frames: int, image_size: int,
                quality: int = JPEG_QUALITY) -> ClipImages:
    """Read and check the clips of `lists`; `load()` of a source decodes its `frames` frames as JPEG bytes."""
    from trainer.data.dataset import VideoClipDataset  # torch: only when clips are read

    if not isinstance(image_size, int) or not MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE:
        raise DataError(f"--image-size must be an integer from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}, got {image_size!r}")
    if not lists:
        raise DataError("no --list given: name at least one list of clips")
    ids, records, counts = [], [], []
    for list_path in lists:
        found = read_annotations(list_path, data_root)
        counts.append({"list": Path(list_path).name, "clips": len(found)})
        ids.extend(clip_id(record.path, list_path, data_root) for record in found)
        records.extend(found)
    hint = "Fix the lists or --data-root; nothing was asked"
    dataset = VideoClipDataset(records, image_size=image_size, train=False, num_segments=frames, hint=hint)
    dataset.check_readable("clips")
    sources = [(cid, partial(_jpegs, dataset, index, image_size, quality)) for index, cid in enumerate(ids)]
    return ClipImages(sources, counts)


def _jpegs(dataset, index: int, image_size: int, quality: int) -> list[bytes]:
    clip = dataset.load_clip(index, dataset.rng(index))  # T x (H, W, 3) uint8, source size
    return [jpeg_bytes(frame, image_size, quality) for frame in clip]


def jpeg_bytes(frame, image_size: int, quality: int = JPEG_QUALITY) -> bytes:
    """One `(H, W, 3)` uint8 frame as JPEG, its longer side scaled down to at most `image_size`."""
    image = Image.fromarray(frame).convert("RGB")
    image.thumbnail((image_size, image_size), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def default_name(list_path: Path | str) -> str:
    """A clip-text set name from a list: its folder's name, else its stem, as a store name."""
    path = Path(list_path).expanduser().absolute()
    for raw in (path.parent.name, path.stem):
        name = re.sub(r"[^a-z0-9_-]+", "-", raw.lower()).strip("-_")[:64]
        if name and name != CLIP_TEXTS_FOLDER:  # a class-set name the store keeps for itself
            return name
    return "clips"
