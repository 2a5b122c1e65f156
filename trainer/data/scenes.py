"""Test videos with known face boxes: a real photograph moving and zooming over a cluttered scene.

Used by the tests and `bench/bench_prepare.py` to measure what `trainer prepare` does with real faces:
detection recall (frames where a detection lies on the true face) and crop centring (how far the
crop's centre is from the true face centre, in face sizes). The face is scikit-image's astronaut
photograph (`skimage.data.astronaut()`, shipped inside scikit-image; the `test` extra installs it);
its face box was marked by hand: hairline to chin, cheek to cheek. No-face scenes move the lower half
of the same photograph (the suit, its patches and the flag: face-like clutter) over the scene instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainer.errors import DataError

ASTRONAUT_FACE = (182.0, 80.0, 83.0, 105.0)  # x, y, w, h in the 512 x 512 photograph
_HEAD = (112, 0, 224, 256)  # x, y, w, h: the head-and-shoulders patch pasted into scenes
_BODY = (40, 250, 432, 262)  # the suit and flag below the face


@dataclass(frozen=True)
class Scene:
    """A written clip and the true face box (x, y, w, h) in each frame (None: no face in the scene)."""

    path: Path
    boxes: list[tuple[float, float, float, float]] | None


def astronaut() -> np.ndarray:
    try:
        from skimage import data
    except ImportError:
        raise DataError("face scenes need scikit-image (pip install scikit-image, or the 'test' extra)") from None
    return data.astronaut()  # (512, 512, 3) uint8


def clutter(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A busy background `(H, W, 3)` uint8: textured noise, rectangles, discs and lines in many colours."""
    import cv2

    base = cv2.resize(rng.integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8),
                      (width, height), interpolation=cv2.INTER_CUBIC)
    img = np.ascontiguousarray(base)
    for _ in range(int(rng.integers(12, 24))):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        kind = rng.integers(0, 3)
        if kind == 0:
            x1, y1 = x0 + int(rng.integers(4, width // 3)), y0 + int(rng.integers(4, height // 3))
            cv2.rectangle(img, (x0, y0), (x1, y1), color, -1)
        elif kind == 1:
            cv2.circle(img, (x0, y0), int(rng.integers(3, max(4, height // 6))), color, -1)
        else:
            cv2.line(img, (x0, y0), (int(rng.integers(0, width)), int(rng.integers(0, height))), color, int(rng.integers(1, 4)))
    return img


def _paste(scene: np.ndarray, patch: np.ndarray, x: float, y: float, scale: float) -> None:
    """Blend `patch`, resized by `scale`, into `scene` at (x, y) through a soft oval mask (in place)."""
    import cv2

    h, w = patch.shape[:2]
    pw, ph = max(2, int(round(w * scale))), max(2, int(round(h * scale)))
    small = cv2.resize(patch, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32)  # (ph, pw, 3)
    yy, xx = np.mgrid[0:ph, 0:pw]
    r = ((xx - pw / 2) / (pw / 2)) ** 2 + ((yy - ph / 2) / (ph / 2)) ** 2
    alpha = np.clip((1.0 - r) * 4, 0, 1)[..., None]  # (ph, pw, 1): 1 inside, fading at the rim
    x0, y0 = int(round(x)), int(round(y))
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    dx1, dy1 = min(scene.shape[1], x0 + pw), min(scene.shape[0], y0 + ph)
    if dx1 <= dx0 or dy1 <= dy0:
        return
    region = scene[dy0:dy1, dx0:dx1].astype(np.float32)
    a = alpha[sy0:sy0 + dy1 - dy0, sx0:sx0 + dx1 - dx0]
    src = small[sy0:sy0 + dy1 - dy0, sx0:sx0 + dx1 - dx0]
    scene[dy0:dy1, dx0:dx1] = (a * src + (1 - a) * region).round().astype(np.uint8)


def _write_video(path: Path, frames: list[np.ndarray], fps: int) -> None:
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = height, width
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 8_000_000
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def face_scene(path: str | Path, *, size: tuple[int, int] = (160, 120), frames: int = 20, seed: int = 0,
               face: bool = True, fps: int = 25, face_height: tuple[float, float] = (0.35, 0.5)) -> Scene:
    """Write a clip (`.mp4`/`.avi`: a video; otherwise a folder of PNG frames) of the astronaut's head
    moving across clutter and zooming from `face_height[0]` to `[1]` of the frame height (or, with
    `face=False`, the suit and flag with no face). Returns the true face box per frame."""
    path = Path(path)
    rng = np.random.default_rng(seed)
    width, height = size
    photo = astronaut()
    hx, hy, hw, hh = _HEAD if face else _BODY
    patch = photo[hy:hy + hh, hx:hx + hw]
    fx, fy, fw, fh = ASTRONAUT_FACE
    ax, ay = (fx - hx + fw / 2, fy - hy + fh / 2) if face else (hw / 2, hh / 2)  # the point that follows the path
    background = clutter(height, width, rng)
    s0, s1 = (np.array(face_height) * height / fh) * rng.uniform(0.9, 1.1)
    start = rng.uniform(0.35, 0.65, 2) * (width, height)
    end = rng.uniform(0.35, 0.65, 2) * (width, height)
    images, boxes = [], []
    for t in range(frames):
        k = t / max(frames - 1, 1)
        scale = s0 + (s1 - s0) * k
        cx, cy = start + (end - start) * k + 2.0 * np.sin(t * 0.7)  # where the face centre goes
        px, py = cx - ax * scale, cy - ay * scale  # the patch's top-left corner
        scene = background.copy()
        _paste(scene, patch, px, py, scale)
        images.append(scene)
        boxes.append((cx - fw * scale / 2, cy - fh * scale / 2, fw * scale, fh * scale))
    if path.suffix.lower() in (".mp4", ".avi"):
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_video(path, images, fps)
    else:
        from PIL import Image

        path.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images, 1):
            Image.fromarray(image).save(path / f"{i:04d}.png")
    return Scene(path, boxes if face else None)


def hits(found: list[tuple[float, float, float, float]], truth: tuple[float, float, float, float]) -> bool:
    """True when a found box's centre lies within half the true face's size of the true centre."""
    tx, ty, tw, th = truth
    tcx, tcy, tsize = tx + tw / 2, ty + th / 2, np.sqrt(tw * th)
    return any(np.hypot(x + w / 2 - tcx, y + h / 2 - tcy) <= 0.5 * tsize for x, y, w, h in found)


def centring_error(box: tuple[float, float, float, float], truth: tuple[float, float, float, float]) -> float:
    """Distance between a crop box's centre and the true face centre, in true face sizes."""
    x, y, w, h = box
    tx, ty, tw, th = truth
    return float(np.hypot(x + w / 2 - tx - tw / 2, y + h / 2 - ty - th / 2) / np.sqrt(tw * th))
