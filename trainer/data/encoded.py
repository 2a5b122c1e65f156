"""The loader side of `--decode gpu`: workers ship the sampled frames' JPEG bytes, not pixels.

For each clip a worker lists the folder, samples the frame indices and draws the clip's augmentation
(`draw_augment`) from the same per-clip Generator, in the same order, as the CPU path
(`VideoClipDataset.__getitem__`), so both paths use the same frames, crop box, flip and brightness.
The frame size the draw needs is read from the JPEG header, not by decoding.

Decoding and augmentation then run batched on the device (`trainer.data.batched`). What a worker
still decodes on the CPU, shipped as raw `(H, W, 3)` pixels: frames that are not JPEG files (PNG
folders), video files (PyAV), and clips cut to the face (`face_crop`).

Bad frames follow the CPU path's rule: a JPEG whose header cannot be read or whose end marker is
missing (a truncated file) is replaced by the nearest readable frame of the clip, counted in the
dataset's `LoadStats` with a logged warning; damage only the decoder sees is handled the same way on
the device side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from trainer.data.decode import _read_nearest, is_video, list_frames, read_image
from trainer.data.sampling import segment_indices
from trainer.data.transforms import AugmentDraw, draw_augment
from trainer.errors import DataError

JPEG, RAW = 0, 1  # how a frame travels: JPEG bytes, or raw (H, W, 3) uint8 pixels
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (size inside)
PARAMS = 10  # ref_h, ref_w, angle, has_box, top, left, box_h, box_w, flip, factor


def jpeg_size(data: bytes | np.ndarray) -> tuple[int, int] | None:
    """(height, width) from a JPEG's header, or None when the header cannot be read or the file's
    end-of-image marker is missing (cut short): the CPU path cannot read such a file either."""
    buf = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    if len(buf) < 4 or buf[:2] != b"\xff\xd8" or b"\xff\xd9" not in buf[-32:]:
        return None
    pos = 2
    while pos + 4 <= len(buf):
        if buf[pos] != 0xFF:
            return None
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(buf[pos + 2:pos + 4], "big")
        if marker in _SOF:
            if pos + 9 > len(buf):
                return None
            height = int.from_bytes(buf[pos + 5:pos + 7], "big")
            width = int.from_bytes(buf[pos + 7:pos + 9], "big")
            return (height, width) if height > 0 and width > 0 else None
        if length < 2 or marker == 0xDA:  # start of scan before any frame header
            return None
        pos += 2 + length
    return None


def is_jpeg_name(path: Path) -> bool:
    return path.suffix.lower() in (".jpg", ".jpeg")


@dataclass
class EncodedClip:
    """One clip as a worker ships it: per frame its bytes, kind (JPEG | RAW) and (H, W)."""

    buffers: list[np.ndarray]
    kinds: list[int]
    sizes: list[tuple[int, int]]
    draw: AugmentDraw | None
    index: int
    picks: np.ndarray  # (T,) the sampled frame indices (folder clips), -1 for decoded clips


def _frame(path: Path) -> tuple[np.ndarray, int, tuple[int, int]]:
    """A frame file as it travels: JPEG bytes with their header size, or CPU-decoded raw pixels;
    raises on an unreadable file (the nearest-frame rule of `_read_nearest` takes it from there)."""
    if is_jpeg_name(path):
        data = np.frombuffer(path.read_bytes(), dtype=np.uint8)
        if data[:2].tobytes() == b"\xff\xd8":  # a JPEG: its header must read and its end be there
            size = jpeg_size(data)
            if size is None:
                raise OSError("its JPEG header cannot be read or the file is cut short")
            return data, JPEG, size
    image = read_image(path)  # not a JPEG (a PNG folder, or a file named .jpg that is not one): on the CPU
    return np.ascontiguousarray(image).reshape(-1), RAW, image.shape[:2]


def encode_clip(dataset, index: int, epoch: int) -> EncodedClip:
    """Clip `index` of a `VideoClipDataset` in `epoch`, as bytes plus its augmentation draw."""
    rng = dataset.rng(index, epoch)
    rec = dataset.records[index]
    if (is_video(rec.path) and rec.path.is_file()) or dataset.detector is not None:
        clip = dataset.load_clip(index, rng)  # T x (H, W, 3), decoded on the CPU
        buffers = [np.ascontiguousarray(f).reshape(-1) for f in clip]
        kinds, sizes = [RAW] * len(clip), [f.shape[:2] for f in clip]
        picks = np.full(len(clip), -1, dtype=np.int64)
    else:
        frames = list_frames(rec.path, dataset.frame_order)
        if not frames:
            raise DataError(f"clip folder {rec.path} ({rec.source}) has no frames any more")
        picks = segment_indices(len(frames), num_segments=dataset.num_segments, train=dataset.train, rng=rng,
                                view=0, views=dataset.views[0])
        cache: dict = {}
        got = [_read_nearest(frames, int(i), cache, dataset.stats, None, read=_frame) for i in picks]
        buffers, kinds, sizes = [g[0] for g in got], [g[1] for g in got], [g[2] for g in got]
    draw = None
    if dataset.train and dataset.preset is not None:
        draw = draw_augment(sizes[0][0], sizes[0][1], dataset.preset, rng)
    return EncodedClip(buffers, kinds, [tuple(s) for s in sizes], draw, index, np.asarray(picks, dtype=np.int64))


@dataclass
class EncodedClips:
    """A batch of B clips x T frames as the loader yields it with `--decode gpu`.

    `data` (N,) uint8 holds every frame's bytes back to back; `meta` (B*T, 5) int64 is per frame
    (offset, length, kind, height, width); `params` (B, PARAMS) float64 is per clip (reference
    height and width, angle, has_box, top, left, box h, box w, flip, brightness factor; has_box -1:
    no augmentation, a plain resize); `clips` (B,) the dataset indices, `picks` (B, T) the frame
    indices in their folders (-1: decoded on the CPU).
    """

    data: torch.Tensor
    meta: torch.Tensor
    params: torch.Tensor
    clips: torch.Tensor
    picks: torch.Tensor
    frames: int = field(default=0)

    def __len__(self) -> int:
        return len(self.clips)

    def pin_memory(self) -> "EncodedClips":
        """Called by the DataLoader's pinning thread: the bytes travel to the device page-locked."""
        return EncodedClips(self.data.pin_memory(), self.meta, self.params, self.clips, self.picks, self.frames)


def _params(clip: EncodedClip) -> list[float]:
    ref_h, ref_w = clip.sizes[0]
    draw = clip.draw
    if draw is None:
        return [ref_h, ref_w, 0.0, -1.0, 0, 0, ref_h, ref_w, 0.0, 1.0]
    top, left, h, w = draw.box if draw.box is not None else (0, 0, ref_h, ref_w)
    return [ref_h, ref_w, draw.angle, float(draw.box is not None), top, left, h, w, float(draw.flip), draw.factor]


def collate_encoded(items: list[tuple[EncodedClip, int]]) -> tuple[EncodedClips, torch.Tensor]:
    """The loader's collate function with `--decode gpu`: one flat byte buffer per batch."""
    clips = [item[0] for item in items]
    lengths = [b.size for c in clips for b in c.buffers]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    data = torch.from_numpy(np.concatenate([b for c in clips for b in c.buffers]))  # (N,) uint8
    meta = torch.tensor([[o, n, k, h, w] for o, n, (k, (h, w)) in
                         zip(offsets.tolist(), lengths, [(k, s) for c in clips for k, s in zip(c.kinds, c.sizes)])],
                        dtype=torch.int64)  # (B*T, 5)
    params = torch.tensor([_params(c) for c in clips], dtype=torch.float64)  # (B, PARAMS)
    batch = EncodedClips(data, meta, params, torch.tensor([c.index for c in clips], dtype=torch.int64),
                         torch.from_numpy(np.stack([c.picks for c in clips])), len(clips[0].buffers))
    return batch, torch.tensor([item[1] for item in items], dtype=torch.int64)


class EncodedView(Dataset):
    """A `VideoClipDataset` seen through `encode_clip`: items `(EncodedClip, label)`."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[EncodedClip, int]:
        index, epoch = key if isinstance(key, tuple) else (key, self.dataset.epoch)
        return encode_clip(self.dataset, index, epoch), self.dataset.records[index].label


def cpu_decoded_clips(dataset) -> int:
    """How many clips of `dataset` a worker still decodes on the CPU under `--decode gpu` (videos,
    folders whose frames are not JPEG, every clip when cutting faces)."""
    if dataset.detector is not None:
        return len(dataset.records)
    count = 0
    for rec in dataset.records:
        if is_video(rec.path) and rec.path.is_file():
            count += 1
        else:
            frames = list_frames(rec.path, dataset.frame_order)
            count += bool(frames) and not is_jpeg_name(frames[0])
    return count
