"""One clip of the face world: its random draw (`ClipSpec`) and its frames.

A clip starts neutral, rises from a random onset to its apex, holds, and sometimes partly releases
before the end. The head drifts, rolls and zooms a little, the eyes blink, the light falls from one
side, and some clips have an object passing in front of the face. Everything but the apex AU vector
is drawn independently of the class, so no colour, brightness, placement or length tells the class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from trainer.world.aus import JITTER, N_AUS
from trainer.world.face import SS, Identity, Pose, draw_face, sample_identity

STYLES = ("cartoon", "chalk", "sketch")  # chalk, sketch: the held-out styles, never used for pretraining
HELD_OUT_STYLES = ("chalk", "sketch")


@dataclass(frozen=True)
class ClipSpec:
    """Everything random about one clip, drawn once."""

    n: int
    apex: np.ndarray  # (N_AUS,) AU intensities at the apex
    rest: np.ndarray  # (N_AUS,) small movements present all along
    onset: float
    peak: float
    release_at: float | None
    release_to: float
    identity: Identity
    cx: float
    cy: float
    scale: float
    drift: tuple[float, float, float]
    roll0: float
    roll_amp: float
    roll_freq: float
    blinks: frozenset[int]
    occluder: tuple[float, ...] | None  # (start, end, x, y, rx, ry, r, g, b) or None
    light: tuple[float, float]  # (brightness, left-right gradient)
    noise: float


def sample_clip(rng: np.random.Generator, apex: np.ndarray, min_frames: int, max_frames: int,
                style: str = "cartoon") -> ClipSpec:
    n = int(rng.integers(min_frames, max_frames + 1))
    onset = rng.uniform(0.05, 0.4) * n
    peak = onset + rng.uniform(0.15, 0.35) * n
    release_at = rng.uniform(0.75, 0.9) * n if rng.random() < 0.3 else None
    n_blinks = int(rng.integers(0, 3))
    blinks = frozenset(int(b) for b in rng.choice(n, size=n_blinks, replace=False))
    occluder = None
    if rng.random() < 0.2:
        start = rng.uniform(0, 0.8) * n
        occluder = (start, start + rng.uniform(0.1, 0.4) * n, rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.9),
                    rng.uniform(0.08, 0.18), rng.uniform(0.08, 0.2), *rng.uniform(30, 220, 3))
    return ClipSpec(
        n=n, apex=apex, rest=rng.uniform(0, JITTER, N_AUS) * (rng.random(N_AUS) < 0.3), onset=onset, peak=peak,
        release_at=release_at, release_to=rng.uniform(0.4, 0.8), identity=sample_identity(rng, style),
        cx=rng.uniform(0.44, 0.56), cy=rng.uniform(0.45, 0.55), scale=rng.uniform(0.72, 0.9),
        drift=tuple(rng.normal(0, 0.04, 3) / n), roll0=rng.uniform(-0.12, 0.12), roll_amp=rng.uniform(0, 0.07),
        roll_freq=rng.uniform(0.5, 2.0), blinks=blinks, occluder=occluder,
        light=(rng.uniform(0.8, 1.15), rng.uniform(-0.2, 0.2)), noise=rng.uniform(1.0, 5.0),
    )


def intensity(spec: ClipSpec, t: int) -> float:
    """How far frame t is into the expression, 0 (neutral) .. 1 (apex)."""
    if t <= spec.onset:
        return 0.0
    x = min(1.0, (t - spec.onset) / max(spec.peak - spec.onset, 1e-6))
    k = 3 * x * x - 2 * x * x * x  # smooth ease-in-out
    if spec.release_at is not None and t > spec.release_at:
        y = min(1.0, (t - spec.release_at) / max(spec.n - 1 - spec.release_at, 1.0))
        k *= 1 - (1 - spec.release_to) * y
    return k


def frame_aus(spec: ClipSpec, t: int) -> np.ndarray:
    """The AU intensities `(N_AUS,)` shown in frame t."""
    return np.clip(spec.rest + intensity(spec, t) * spec.apex, 0.0, 1.0)


def frame_pose(spec: ClipSpec, t: int) -> Pose:
    dx, dy, dz = spec.drift
    roll = spec.roll0 + spec.roll_amp * math.sin(2 * math.pi * spec.roll_freq * t / max(spec.n, 1))
    return Pose(cx=spec.cx + dx * t, cy=spec.cy + dy * t, scale=spec.scale * (1 + dz * t), roll=roll)


def _background(ident: Identity, size: int) -> Image.Image:
    grad = np.linspace(0, 1, size)[:, None, None]  # (S, 1, 1) vertical gradient
    bg = np.asarray(ident.bg_rgb) * (1 - grad) + np.asarray(ident.bg_rgb2) * grad  # (S, 1, 3)
    return Image.fromarray(np.repeat(bg, size, axis=1).astype(np.uint8))


def render_frame(spec: ClipSpec, t: int, size: int, rng: np.random.Generator,
                 au: np.ndarray | None = None) -> np.ndarray:
    """Frame t as uint8 `(size, size, 3)`. `au` overrides the clip's AU vector (for stills)."""
    canvas = size * SS
    img = _background(spec.identity, canvas)
    au = frame_aus(spec, t) if au is None else au
    draw_face(img, spec.identity, frame_pose(spec, t), au, blink=t in spec.blinks)
    if spec.occluder is not None and spec.occluder[0] <= t <= spec.occluder[1]:
        from PIL import ImageDraw

        _, _, x, y, rx, ry, r, g, b = spec.occluder
        ImageDraw.Draw(img).ellipse([(x - rx) * canvas, (y - ry) * canvas, (x + rx) * canvas, (y + ry) * canvas],
                                    fill=(int(r), int(g), int(b)))
    small = np.asarray(img.resize((size, size), Image.BOX), dtype=np.float32)  # (S, S, 3)
    bright, slope = spec.light
    light = bright * (1 + slope * np.linspace(-1, 1, size))[None, :, None]  # (1, S, 1) side light
    small = small * light + rng.normal(0, spec.noise, size=small.shape)
    return np.clip(small, 0, 255).astype(np.uint8)
