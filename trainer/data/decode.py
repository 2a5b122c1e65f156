"""Reading frames: folders of JPEG/PNG frames and video files (PyAV), to uint8 `(T, H, W, 3)` arrays.

Only the sampled frames are decoded. Frames of a folder are ordered by a natural (numeric) sort of
their names, so `2.jpg` comes before `10.jpg`; `frame_order="lexicographic"` gives the plain string
sort the authors' code used, for exact reproduction of their frame choice.

An unreadable frame (corrupt or truncated file) is replaced by the nearest readable frame of the
same clip and counted in `LoadStats`, with a logged warning; a clip with no readable frame raises
DataError naming the clip.
"""

from __future__ import annotations

import io
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from PIL import Image

from trainer.errors import DataError

log = logging.getLogger(__name__)

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv"})
FRAME_ORDERS = ("natural", "lexicographic")
_DIGITS = re.compile(r"(\d+)")


@dataclass
class LoadStats:
    """Counts of problems met while loading (per process: each loader worker keeps its own)."""

    replaced_frames: int = 0
    no_face: int = 0
    bad_files: set = field(default_factory=set)


def natural_key(name: str) -> tuple:
    """Sort key that orders the digit runs of a name by value: `f2` < `f10`."""
    return tuple(int(p) if p.isdigit() else p for p in _DIGITS.split(name))


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTS


def list_frames(folder: Path, order: str = "natural") -> list[Path]:
    """The image files of a clip folder, in frame order."""
    if order not in FRAME_ORDERS:
        raise DataError(f"frame_order must be one of {FRAME_ORDERS}, got {order!r}")
    with os.scandir(folder) as entries:
        names = [e.name for e in entries
                 if os.path.splitext(e.name)[1].lower() in IMAGE_EXTS and e.is_file()]
    names.sort(key=natural_key if order == "natural" else None)
    return [folder / n for n in names]


def reason(exc: BaseException) -> str:
    """A user-facing reason for a decoder failure: the OS's words or the decoder's own message,
    never a Python internal such as "pop from empty list" (IndexError inside a decoder)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, (OSError, ValueError, SyntaxError)) or type(exc).__module__.split(".")[0] in ("av", "PIL", "cv2"):
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        text = re.sub(r": '[^']*'$", "", re.sub(r"^\[Errno -?\d+\] ", "", text))  # PyAV: "[Errno N] what: 'file'"
        if text:
            return text[:160]
    return "the file is damaged or in an unsupported format"


def _open_video(path: Path):
    import av  # PyAV; imported here so frame-folder users never load it

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise DataError(f"cannot open video {path}: {reason(exc)}") from exc
    if not container.streams.video:
        container.close()
        raise DataError(f"{path} has no video stream")
    return container


def count_video_frames(path: Path) -> int:
    """Frame count of a video: the stream's own count, or by decoding when it has none."""
    container = _open_video(path)
    try:
        stream = container.streams.video[0]
        if stream.frames and stream.frames > 0:
            return int(stream.frames)
        return sum(1 for _ in container.decode(stream))
    except Exception as exc:  # noqa: BLE001 - PyAV raises many types on broken files
        raise DataError(f"cannot read video {path}: {reason(exc)}") from exc
    finally:
        container.close()


def iter_video(path: Path, fps: float | None = None):
    """Every frame of a video in order as `(H, W, 3)` uint8 RGB; with `fps`, the frames nearest to a
    `fps` grid of time stamps (frames dropped or repeated). A decoder error after some frames ends the
    clip there (a truncated file); before any frame it raises DataError naming the file."""
    container = _open_video(path)
    seen = 0
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 25.0)
        slot, start = 0, None  # the next output time stamp is slot / fps (from the first frame)
        for i, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else i / rate
            start = t if start is None else start
            t -= start
            image = frame.to_ndarray(format="rgb24")  # (H, W, 3)
            seen += 1
            if fps is None:
                yield image
                continue
            while slot / fps < t + 0.5 / rate:  # every grid time this frame is the nearest to
                yield image
                slot += 1
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - PyAV raises many types on broken files
        if not seen:
            raise DataError(f"cannot decode video {path}: {reason(exc)}") from exc
        log.warning("video %s: decoding stopped after %d frames (%s)", path, seen, reason(exc))
    finally:
        container.close()


def _decode_selected(path: Path, wanted: set[int]) -> tuple[dict[int, np.ndarray], int]:
    """Decode `path` up to the last wanted index; returns {index: (H, W, 3) uint8} and frames seen."""
    container = _open_video(path)
    got: dict[int, np.ndarray] = {}
    seen = 0
    last = max(wanted)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            seen = i + 1
            if i in wanted:
                got[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
    except Exception as exc:  # noqa: BLE001
        if not got:
            raise DataError(f"cannot decode video {path}: {reason(exc)}") from exc
    finally:
        container.close()
    return got, seen


def load_video(path: Path, pick: Callable[[int], np.ndarray], stats: LoadStats) -> np.ndarray:
    """Decode the frames `pick(frame_count)` chooses from a video -> `(T, H, W, 3)` uint8."""
    count = count_video_frames(path)
    if count < 1:
        raise DataError(f"video {path} has no frames")
    indices = pick(count)
    got, seen = _decode_selected(path, set(int(i) for i in indices))
    if len(got) < len(set(int(i) for i in indices)):  # the stream's frame count was too high
        if seen < 1:
            raise DataError(f"video {path} has no decodable frames")
        indices = pick(seen)
        got, _ = _decode_selected(path, set(int(i) for i in indices))
        if not got:
            raise DataError(f"video {path} has no decodable frames")
    keys = sorted(got)
    nearest = [min(keys, key=lambda k: (abs(k - int(i)), k)) for i in indices]  # decoded frames only
    if any(k != int(i) for k, i in zip(nearest, indices)):
        stats.replaced_frames += 1
        log.warning("video %s: some sampled frames did not decode; using the nearest decoded ones",
                    path)
    return np.stack([got[k] for k in nearest])  # (T, H, W, 3)


def _complete_jpeg(data: np.ndarray) -> bool:
    """False for a JPEG whose end-of-image marker is missing (a truncated file)."""
    if data.size < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return True  # not a JPEG: the decoder's own checks apply
    tail = data[-32:].tobytes()
    return b"\xff\xd9" in tail


def _read_with_pil(data: np.ndarray, draft: int | None) -> np.ndarray:
    with Image.open(io.BytesIO(data.tobytes())) as im:
        if draft is not None and im.format == "JPEG":
            im.draft("RGB", (draft, draft))
        return np.array(im.convert("RGB"))  # decodes; a corrupt or truncated file raises here


def read_image(path: Path, draft: int | None = None) -> np.ndarray:
    """One image file -> `(H, W, 3)` uint8 RGB; raises OSError/ValueError on unreadable files.

    OpenCV decodes (about twice as fast as Pillow); a file it rejects or a JPEG cut short goes to
    Pillow, which raises for real damage. With `draft`, a JPEG at least twice `draft` pixels a side
    is decoded at a reduced scale (1/2, 1/4, 1/8, never below `draft`).
    """
    data = np.frombuffer(path.read_bytes(), dtype=np.uint8)  # 2x faster than np.fromfile
    if draft is not None and data.size > 2 and data[0] == 0xFF and data[1] == 0xD8:
        with Image.open(io.BytesIO(data.tobytes())) as im:
            big = min(im.size) >= 2 * draft
        if big:
            return _read_with_pil(data, draft)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is not None and _complete_jpeg(data):
        return image
    return _read_with_pil(data, None)


def _outward(index: int, count: int):
    """index, index-1, index+1, index-2, ... within 0..count-1 (nearest frames first)."""
    yield index
    for step in range(1, count):
        for j in (index - step, index + step):
            if 0 <= j < count:
                yield j


def _read_nearest(frames: list[Path], index: int, cache: dict, stats: LoadStats,
                  draft: int | None, read: Callable[[Path], Any] | None = None) -> Any:
    """Frame `index` read with `read` (default: `read_image` at `draft`), or the nearest readable
    frame of the clip in its place (counted in `stats`, logged); DataError when none reads."""
    if index in cache:
        return cache[index]
    first_error = None
    for j in _outward(index, len(frames)):
        try:
            image = cache[j] if j in cache else read(frames[j]) if read else read_image(frames[j], draft)
        except Exception as exc:  # noqa: BLE001 - decoders raise IndexError, struct.error, ... on damage
            first_error = first_error or reason(exc)
            stats.bad_files.add(frames[j])
            continue
        cache[j] = image
        if j != index:
            stats.replaced_frames += 1
            log.warning("unreadable frame %s (%s); using %s instead (%d frames replaced so far)",
                        frames[index], first_error, frames[j].name, stats.replaced_frames)
        cache[index] = image
        return image
    raise DataError(f"clip {frames[index].parent} has no readable frame (first error: {first_error})")


def first_readable(frames: list[Path], draft: int | None = 32) -> str | None:
    """None when some frame of the clip decodes (tried from the middle outwards), else the first
    error: a cheap check that a clip can be loaded at all."""
    if not frames:
        return "no frames"
    try:
        _read_nearest(frames, len(frames) // 2, {}, LoadStats(), draft)
    except DataError as exc:
        return str(exc)
    return None


def load_frames(frames: list[Path], indices: np.ndarray, stats: LoadStats,
                draft: int | None = None) -> list[np.ndarray]:
    """Decode the frames at `indices` of a folder listing -> T arrays `(H, W, 3)` uint8 of one size.

    A list, not a stacked array: the transforms write each frame once into their output, so
    stacking here would be one more copy of the whole clip.
    """
    cache: dict[int, np.ndarray] = {}
    images = [_read_nearest(frames, int(i), cache, stats, draft) for i in indices]
    h, w = images[0].shape[:2]
    if any(im.shape[:2] != (h, w) for im in images):  # frames of one clip differ in size
        images = [im if im.shape[:2] == (h, w) else
                  cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA) for im in images]
    return images  # T x (H, W, 3)
