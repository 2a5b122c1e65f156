"""Follow one face through a clip and turn its boxes into steady square crops.

`follow_face(detections)` takes the faces found in each frame and returns one box per frame:

1. Link: each face joins the track whose last box is nearest (centre within 60% of the face's side,
   side within a factor of 2, last seen at most `max_gap` frames ago); otherwise it starts a track.
2. Pick: the track with the largest summed detector score. On a clip of one person that is the face
   present from the start, and the largest when two are; a false detection in the clutter is seen in
   a few frames with low scores and loses, where "largest box in the first frame" would lock onto it.
3. Fill and smooth: frames where the detector missed the face take the box interpolated between the
   neighbouring detections (held at the ends); a running median removes single-frame outliers and a
   Gaussian (sigma `smooth` frames) removes the detector's jitter, so the crop does not shake. The
   padding at the ends mirrors around the end value, which keeps a steady motion unbiased.

`crop_square` cuts a square of `side * (1 + 2 * margin)` around a box centre, padded with black where
it leaves the frame (the face stays centred and at one scale near the border), resized to `size`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from trainer.data.faces import Face


@dataclass
class FaceTrack:
    """One followed face: per-frame boxes `(T, 4)` as (x, y, w, h), and which frames had a detection."""

    boxes: np.ndarray  # (T, 4) float64
    detected: np.ndarray  # (T,) bool
    searched: np.ndarray  # (T,) bool: frames the detector ran on

    @property
    def share(self) -> float:
        """The share of the searched frames where this face was detected."""
        n = int(self.searched.sum())
        return float(self.detected.sum()) / n if n else 0.0


def _matches(last: Face, face: Face) -> float | None:
    """Centre distance between two boxes when they can be the same face, else None."""
    (ax, ay), (bx, by) = last.centre, face.centre
    dist = float(np.hypot(ax - bx, ay - by))
    ratio = face.side / last.side
    if dist <= 0.6 * max(last.side, face.side) and 0.5 <= ratio <= 2.0:
        return dist
    return None


def link_tracks(detections: Sequence[Sequence[Face] | None], max_gap: int) -> list[list[tuple[int, Face]]]:
    """Faces per frame (None: not searched) -> tracks, each a list of (frame index, face) in time order."""
    tracks: list[list[tuple[int, Face]]] = []
    for t, faces in enumerate(detections):
        if not faces:
            continue
        pairs = []
        for ti, track in enumerate(tracks):
            last_t, last = track[-1]
            if t - last_t > max_gap:
                continue
            for fi, face in enumerate(faces):
                dist = _matches(last, face)
                if dist is not None:
                    pairs.append((dist, ti, fi))
        used_tracks, used_faces = set(), set()
        for _, ti, fi in sorted(pairs):  # nearest pairs first
            if ti in used_tracks or fi in used_faces:
                continue
            tracks[ti].append((t, faces[fi]))
            used_tracks.add(ti)
            used_faces.add(fi)
        tracks.extend([(t, f)] for fi, f in enumerate(faces) if fi not in used_faces)
    return tracks


def _running_median(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) < 3:
        return values
    half = min(window // 2, (len(values) - 1) // 2)
    padded = np.pad(values, half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)  # (n, 2*half+1)
    return np.median(windows, axis=1)


def _gaussian(values: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0 or len(values) < 2:
        return values
    half = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    n = len(values)
    reps = -(-half // (n - 1)) if half else 0  # mirror-odd padding may need to wrap for short clips
    padded = values
    for _ in range(max(reps, 1)):
        left = 2 * padded[0] - padded[1:][::-1]
        right = 2 * padded[-1] - padded[:-1][::-1]
        padded = np.concatenate([left, padded, right])
    offset = (len(padded) - n) // 2
    padded = padded[offset - half: offset + n + half]
    return np.convolve(padded, kernel, mode="valid")  # (n,)


def follow_face(detections: Sequence[Sequence[Face] | None], *, max_gap: int = 50, smooth: float = 2.0,
                median: int = 5) -> FaceTrack | None:
    """Per-frame faces (None: a frame the detector skipped) -> the followed face's smoothed box in every
    frame, or None when none was seen."""
    n = len(detections)
    tracks = link_tracks(detections, max_gap)
    if not tracks:
        return None
    best = max(tracks, key=lambda tr: (sum(f.score for _, f in tr), len(tr), -tr[0][0]))
    times = np.array([t for t, _ in best], dtype=np.float64)  # (k,)
    cx = np.array([f.centre[0] for _, f in best])
    cy = np.array([f.centre[1] for _, f in best])
    side = np.array([f.side for _, f in best])
    cx, cy, side = (_running_median(v, median) for v in (cx, cy, side))
    frames = np.arange(n, dtype=np.float64)
    cx, cy, side = (np.interp(frames, times, v) for v in (cx, cy, side))  # (n,) each, held at the ends
    cx, cy = _gaussian(cx, smooth), _gaussian(cy, smooth)
    side = _gaussian(side, 2 * smooth)
    boxes = np.stack([cx - side / 2, cy - side / 2, side, side], axis=1)  # (n, 4)
    detected = np.zeros(n, dtype=bool)
    detected[times.astype(int)] = True
    searched = np.array([d is not None for d in detections], dtype=bool)
    return FaceTrack(boxes, detected, searched)


def crop_square(frame: np.ndarray, box: Sequence[float] | None, margin: float, size: int) -> np.ndarray:
    """`(H, W, 3)` -> `(size, size, 3)`: a square around `box` (x, y, w, h) grown by `margin` on each side,
    black outside the frame; with `box` None, the largest centred square."""
    import cv2

    h, w = frame.shape[:2]
    if box is None:
        side = min(h, w)
        cx, cy = w / 2, h / 2
    else:
        x, y, bw, bh = box
        side = max(bw, bh) * (1 + 2 * margin)
        cx, cy = x + bw / 2, y + bh / 2
    side = max(int(round(side)), 2)
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    crop = np.zeros((side, side, 3), dtype=frame.dtype)  # (S, S, 3)
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + side, w), min(top + side, h)
    if x1 > x0 and y1 > y0:
        crop[y0 - top:y1 - top, x0 - left:x1 - left] = frame[y0:y1, x0:x1]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)
