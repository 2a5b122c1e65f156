"""Clip-consistent augmentation on stacked uint8 frames `(T, 3, H, W)`.

Every frame of a clip gets the same crop, flip, rotation and brightness factor, drawn from the
numpy Generator the caller passes (the dataset derives it from seed, epoch and clip index, so a
resumed run sees the same augmentation). Output stays uint8; float conversion happens on the device.

Presets follow the paper's code: all datasets use a random-sized crop (area 0.08-1, aspect 3/4-4/3)
and a horizontal flip; DFEW adds brightness jitter 0.5, FERV39k a rotation of up to 4 degrees.
Testing is a plain resize to the square input size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from trainer.data.errors import DataError


@dataclass(frozen=True)
class AugmentPreset:
    """Training augmentation: random-sized crop + flip + optional brightness jitter and rotation."""

    name: str = "custom"
    crop: bool = True
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = True
    brightness: float = 0.0  # factor drawn from [1 - b, 1 + b]
    rotation: float = 0.0  # degrees, angle drawn from [-r, r]

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if not 0 < lo <= hi <= 1:
            raise DataError(f"augment scale must satisfy 0 < min <= max <= 1, got {self.scale!r}")
        if not 0 < self.ratio[0] <= self.ratio[1]:
            raise DataError(f"augment ratio must satisfy 0 < min <= max, got {self.ratio!r}")
        if not 0 <= self.brightness < 1:
            raise DataError(f"augment brightness must be in [0, 1), got {self.brightness!r}")
        if not 0 <= self.rotation <= 180:
            raise DataError(f"augment rotation must be in [0, 180] degrees, got {self.rotation!r}")


PRESET_NAMES = ("dfew", "ferv39k", "mafw", "light", "none")


def augment_preset(name: str) -> AugmentPreset:
    """The named preset: dfew | ferv39k | mafw (the paper's), light (small images), none."""
    key = name.lower()
    if key == "dfew":
        return AugmentPreset("dfew", brightness=0.5)
    if key == "ferv39k":
        return AugmentPreset("ferv39k", rotation=4.0)
    if key == "mafw":
        return AugmentPreset("mafw")
    if key == "light":
        return AugmentPreset("light", scale=(0.6, 1.0), ratio=(0.9, 1.1), brightness=0.2)
    if key == "none":
        return AugmentPreset("none", crop=False, hflip=False)
    raise DataError(f"unknown augmentation preset {name!r}; expected one of {', '.join(PRESET_NAMES)}")


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


def train_transform(clip: torch.Tensor, size: int, preset: AugmentPreset,
                    rng: np.random.Generator) -> torch.Tensor:
    """`(T, 3, H, W)` uint8 -> `(T, 3, size, size)` uint8 with one random draw for the whole clip."""
    if preset.rotation > 0:
        angle = float(rng.uniform(-preset.rotation, preset.rotation))
        clip = TF.rotate(clip, angle, interpolation=InterpolationMode.BILINEAR)
    if preset.crop:
        top, left, h, w = crop_params(clip.shape[-2], clip.shape[-1], preset.scale, preset.ratio, rng)
        clip = TF.resized_crop(clip, top, left, h, w, [size, size], antialias=True)
    else:
        clip = resize_clip(clip, size)
    if preset.hflip and rng.random() < 0.5:
        clip = clip.flip(-1)
    if preset.brightness > 0:
        factor = float(rng.uniform(1 - preset.brightness, 1 + preset.brightness))
        clip = TF.adjust_brightness(clip, factor)
    return clip.contiguous()


def resize_clip(clip: torch.Tensor, size: int) -> torch.Tensor:
    """Plain resize of every frame to `size x size` (the test transform), uint8 in and out."""
    if clip.shape[-2:] == (size, size):
        return clip
    return TF.resize(clip, [size, size], antialias=True)
