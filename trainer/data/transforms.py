"""Clip-consistent augmentation of uint8 frames with OpenCV: T x `(H, W, 3)` in, `(T, 3, S, S)` out.

Every frame of a clip gets the same crop, flip, rotation and brightness factor, drawn from the
numpy Generator the caller passes (the dataset derives it from seed, epoch and clip index, so a
resumed run sees the same augmentation). Output stays uint8; float conversion happens on the device.
Frames stay channels-last numpy arrays while in the worker, where OpenCV's resize and warp are
several times faster than the same steps on `(T, 3, H, W)` tensors; each resized frame is written
channel-first into the output once, and flip and brightness then run over the whole clip in place.

The presets (`AugmentPreset`, named in `trainer.data.registry.AUGMENT_PRESETS`) follow the paper's
code. Testing is a plain resize to the square input size.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import cv2
import numpy as np
import torch

from trainer.data.registry import AugmentPreset

Clip = Union[np.ndarray, Sequence[np.ndarray]]  # (T, H, W, 3) array or T frames (H, W, 3), uint8


def crop_params(height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
                rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A random box (top, left, h, w) of area fraction in `scale` and aspect w/h in `ratio`."""
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(10):
        target = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    # fallback: the largest centred box whose aspect lies inside `ratio`
    aspect = min(max(width / height, ratio[0]), ratio[1])
    w, h = (width, int(round(width / aspect))) if width / height <= aspect else \
        (int(round(height * aspect)), height)
    w, h = min(w, width), min(h, height)
    return (height - h) // 2, (width - w) // 2, h, w


def _put(frame: np.ndarray, size: int, planes: np.ndarray, buffer: np.ndarray) -> None:
    """Resize `(H, W, 3)` to `size` (area averaging when shrinking, bilinear when enlarging) and
    write it channel-first into `planes` `(3, size, size)`."""
    h, w = frame.shape[:2]
    if (h, w) != (size, size):
        shrink = h * w >= size * size
        frame = cv2.resize(frame, (size, size), dst=buffer,
                           interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    cv2.split(frame, [planes[0], planes[1], planes[2]])  # HWC -> CHW, written in place


def _rotate(frame: np.ndarray, angle: float) -> np.ndarray:
    h, w = frame.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), angle, 1.0)  # (2, 3)
    return cv2.warpAffine(frame, matrix, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def train_transform(clip: Clip, size: int, preset: AugmentPreset,
                    rng: np.random.Generator) -> np.ndarray:
    """T frames `(H, W, 3)` uint8 -> `(T, 3, size, size)` uint8, one random draw for the clip."""
    angle = float(rng.uniform(-preset.rotation, preset.rotation)) if preset.rotation > 0 else 0.0
    height, width = clip[0].shape[:2]
    box = crop_params(height, width, preset.scale, preset.ratio, rng) if preset.crop else None
    flip = preset.hflip and rng.random() < 0.5
    factor = float(rng.uniform(1 - preset.brightness, 1 + preset.brightness)) \
        if preset.brightness > 0 else 1.0
    out = np.empty((len(clip), 3, size, size), dtype=np.uint8)  # (T, 3, S, S)
    buffer = np.empty((size, size, 3), dtype=np.uint8)
    for t, frame in enumerate(clip):
        if angle:
            frame = _rotate(frame, angle)
        if box is not None:
            top, left, h, w = box
            frame = frame[top:top + h, left:left + w]
        _put(frame, size, out[t], buffer)
    rows = out.reshape(-1, size)  # (T*3*S, S): every row flips on its own, so one call does all
    if flip:
        cv2.flip(rows, 1, dst=rows)
    if factor != 1.0:  # saturating multiply, rounded (3x faster than a lookup table here)
        cv2.convertScaleAbs(rows, dst=rows, alpha=factor)
    return out


def resize_clip(clip: Clip, size: int) -> np.ndarray:
    """Plain resize of every frame to `size x size` (the test transform) -> `(T, 3, S, S)` uint8."""
    out = np.empty((len(clip), 3, size, size), dtype=np.uint8)  # (T, 3, S, S)
    buffer = np.empty((size, size, 3), dtype=np.uint8)
    for t, frame in enumerate(clip):
        _put(frame, size, out[t], buffer)
    return out


def crop_views(clip: Clip, size: int, crops: int) -> list[np.ndarray]:
    """Spatial test views: one crop is the plain resize; `crops` > 1 resizes to 8/7 of `size` and
    takes `crops` crops of `size` evenly spaced along the diagonal (top-left ... bottom-right)."""
    if crops == 1:
        return [resize_clip(clip, size)]
    big = max(size + 1, round(size * 8 / 7))
    full = resize_clip(clip, big)  # (T, 3, B, B)
    offsets = [round(i * (big - size) / (crops - 1)) for i in range(crops)]
    return [np.ascontiguousarray(full[:, :, o:o + size, o:o + size]) for o in offsets]  # each (T, 3, S, S)


def to_tensor(clip: np.ndarray) -> torch.Tensor:
    """`(T, 3, H, W)` uint8 numpy -> the same as a contiguous tensor (no copy)."""
    return torch.from_numpy(clip)
