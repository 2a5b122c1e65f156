"""Optional face crop for raw videos of a whole scene, with OpenCV's bundled Haar cascade (offline).

The detector runs on the sampled frames (downscaled to at most 320 px for speed), keeps the largest
face of each frame, and combines them into one box for the clip: the median centre and the largest
side, expanded by a margin and made square. Every frame gets the same crop, so the face does not
jitter. When no frame has a face, the clip keeps its full frames and the caller counts a warning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainer.errors import DataError

CASCADE = "haarcascade_frontalface_default.xml"


class FaceDetector:
    """OpenCV Haar cascade, loaded on first use (one per process; cascades do not pickle)."""

    def __init__(self, cascade_path: str | Path | None = None, max_side: int = 320) -> None:
        self.cascade_path = cascade_path
        self.max_side = max_side
        self._cascade = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cascade"] = None  # rebuilt in each loader worker
        return state

    def _load(self):
        import cv2

        if not hasattr(cv2, "CascadeClassifier"):  # OpenCV 5 moved Haar cascades out of the wheel
            raise DataError(f"face crop needs OpenCV 4's Haar cascades, but OpenCV {cv2.__version__} "
                            "has none; install 'opencv-python-headless>=4.8,<5' or drop face_crop")
        path = str(self.cascade_path or Path(cv2.data.haarcascades) / CASCADE)
        cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise DataError(f"cannot load the face detector cascade {path}")
        return cascade

    def largest_face(self, frame: np.ndarray) -> tuple[float, float, float, float] | None:
        """`(H, W, 3)` uint8 RGB -> the largest face box (x, y, w, h) in frame pixels, or None."""
        import cv2

        if self._cascade is None:
            self._cascade = self._load()
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)  # (H, W)
        h, w = gray.shape
        scale = min(1.0, self.max_side / max(h, w))
        if scale < 1.0:
            gray = cv2.resize(gray, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        min_side = max(16, int(min(gray.shape) * 0.08))
        boxes = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4,
                                               minSize=(min_side, min_side))
        if len(boxes) == 0:
            return None
        x, y, bw, bh = max(boxes, key=lambda b: b[2] * b[3])
        return x / scale, y / scale, bw / scale, bh / scale


def clip_box(boxes: list[tuple[float, float, float, float]], height: int, width: int,
             margin: float) -> tuple[int, int, int]:
    """One square (top, left, side) for the clip from per-frame boxes, inside the image."""
    arr = np.asarray(boxes, dtype=np.float64)  # (n, 4) x, y, w, h
    cx = float(np.median(arr[:, 0] + arr[:, 2] / 2))
    cy = float(np.median(arr[:, 1] + arr[:, 3] / 2))
    side = float(arr[:, 2:].max()) * (1 + 2 * margin)
    side = int(round(min(side, height, width)))
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
    return top, left, side


def crop_faces(clip, detector: FaceDetector, margin: float = 0.25) -> tuple[list[np.ndarray], bool]:
    """T frames `(H, W, 3)` uint8 -> (the face crops `(S, S, 3)`, True) or (the frames, False)."""
    frames = list(clip)
    boxes = [b for b in (detector.largest_face(f) for f in frames) if b is not None]
    if not boxes:
        return frames, False
    height, width = frames[0].shape[:2]
    top, left, side = clip_box(boxes, height, width, margin)
    return [f[top:top + side, left:left + side] for f in frames], True
