"""Face detection, shared by `trainer prepare` (per-frame tracks) and `predict --face-crop` (one box).

A detector is any object with `detect(frame) -> list[Face]` for an RGB uint8 frame `(H, W, 3)`;
boxes are in that frame's pixels. Three come with the toolkit, picked by `make_detector(spec)`:

Every detector returns face boxes in one convention, so one margin fits all: a square-ish box from
the hairline to the chin and cheek to cheek. The Haar cascade's own box sits higher and smaller (brows
to lower lip); it is moved down by `HAAR_SHIFT` and grown by `HAAR_GROW` of its side, measured by hand
on scikit-image's astronaut photograph (Haar box (177, 66, 95, 95), face (182, 80, 83, 105)).

- `haar` (the default): OpenCV 4's bundled frontal-face Haar cascade. It needs no download and runs
  offline on any machine. It searches a copy of the frame scaled to at most 320 px a side, where a
  face must be about 24 px to be found (1/8 of a 360p frame's height), and a frame with no face
  there once more at twice that size, for small faces; `haar:640` starts at 640 px. Its score is the number of overlapping raw detections merged into the box
  (OpenCV's "neighbours"), which separates real faces (tens) from clutter (a handful) far better than
  box size: on scikit-image's astronaut photograph the largest box is a patch on the suit (7
  neighbours), the face has 47.
- `yunet:MODEL.onnx` (or just a path ending in `.onnx`): OpenCV's YuNet CNN through
  `cv2.FaceDetectorYN`, with a model file the user has (opencv_zoo's
  `face_detection_yunet_2023mar.onnx`); better on profiles, small and dim faces. Score: its confidence.
- `package.module:function`: a user callable `fn(frame) -> [(x, y, w, h[, score]), ...]`, imported in
  each worker process (any detector a user already runs: RetinaFace, MediaPipe, ...).
`none` gives no detector (frames already face-cropped: the caller crops the centre).

Detectors load lazily and drop their OpenCV objects when pickled, so they can travel to worker processes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np

from trainer.errors import DataError

CASCADE = "haarcascade_frontalface_default.xml"
HAAR_SHIFT = 0.2  # the face centre lies this share of the cascade box's side below the box centre
HAAR_GROW = 1.1  # the face (hairline to chin) is this much taller than the cascade box
DETECTORS = ("haar", "haar:SIDE", "yunet:MODEL.onnx", "module:function", "none")


@dataclass(frozen=True)
class Face:
    """One detected face: box (x, y, w, h) in frame pixels and a detector-specific score (higher is surer)."""

    x: float
    y: float
    w: float
    h: float
    score: float = 1.0

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    @property
    def side(self) -> float:
        return float(np.sqrt(max(self.w, 1e-6) * max(self.h, 1e-6)))


class Detector(Protocol):
    name: str

    def detect(self, frame: np.ndarray) -> list[Face]: ...


def _downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        image = cv2.resize(image, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    return image, scale


class _Lazy:
    """Holds a loaded OpenCV object that is rebuilt after pickling (cascades and nets do not pickle)."""

    _model: Any = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_model"] = None
        return state

    def best_face(self, frame: np.ndarray) -> tuple[float, float, float, float] | None:
        """The surest face's box (x, y, w, h), or None."""
        faces = self.detect(frame)  # type: ignore[attr-defined]
        if not faces:
            return None
        f = max(faces, key=lambda f: (f.score, f.w * f.h))
        return f.x, f.y, f.w, f.h


class HaarDetector(_Lazy):
    """OpenCV's bundled frontal-face cascade, on a copy downscaled to at most `max_side` pixels."""

    name = "haar"

    def __init__(self, cascade_path: str | Path | None = None, max_side: int = 320, min_neighbours: int = 4) -> None:
        self.cascade_path = cascade_path
        self.max_side = max_side
        self.min_neighbours = min_neighbours

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

    def detect(self, frame: np.ndarray) -> list[Face]:
        """Faces found on a copy of at most `max_side` pixels; where none is, once more at twice
        that size (small faces in wide shots), so the fast size serves close-ups and the slower one
        only the frames that need it."""
        faces = self._detect_at(frame, self.max_side)
        if not faces and max(frame.shape[:2]) > self.max_side:
            faces = self._detect_at(frame, 2 * self.max_side)
        return faces

    def _detect_at(self, frame: np.ndarray, max_side: int) -> list[Face]:
        import cv2

        if self._model is None:
            self._model = self._load()
        gray = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)  # (H, W)
        gray, scale = _downscale(gray, max_side)
        gray = cv2.equalizeHist(gray)
        min_side = max(16, int(min(gray.shape) * 0.08))
        boxes, neighbours = self._model.detectMultiScale2(gray, scaleFactor=1.1, minNeighbors=self.min_neighbours,
                                                          minSize=(min_side, min_side))
        faces = []
        for (x, y, w, h), n in zip(np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / scale, np.asarray(neighbours).reshape(-1)):
            side = HAAR_GROW * max(w, h)
            cx, cy = x + w / 2, y + h / 2 + HAAR_SHIFT * h
            faces.append(Face(cx - side / 2, cy - side / 2, side, side, float(n)))
        return faces


class YuNetDetector(_Lazy):
    """OpenCV's YuNet (`cv2.FaceDetectorYN`) with a user-supplied ONNX model file."""

    name = "yunet"

    def __init__(self, model_path: str | Path, score_threshold: float = 0.7, max_side: int = 640) -> None:
        self.model_path = Path(model_path).expanduser()
        if not self.model_path.is_file():
            raise DataError(f"YuNet model file not found: {self.model_path} (opencv_zoo's "
                            "face_detection_yunet_2023mar.onnx)")
        self.score_threshold = score_threshold
        self.max_side = max_side
        self._size: tuple[int, int] | None = None

    def detect(self, frame: np.ndarray) -> list[Face]:
        import cv2

        image, scale = _downscale(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR), self.max_side)
        size = (image.shape[1], image.shape[0])
        if self._model is None:
            try:
                self._model = cv2.FaceDetectorYN.create(str(self.model_path), "", size, self.score_threshold)
            except cv2.error as exc:
                raise DataError(f"cannot load the YuNet model {self.model_path}: {str(exc).strip().splitlines()[-1]}") from None
            self._size = size
        if size != self._size:
            self._model.setInputSize(size)
            self._size = size
        _, found = self._model.detect(image)
        if found is None:
            return []
        return [Face(r[0] / scale, r[1] / scale, r[2] / scale, r[3] / scale, float(r[-1])) for r in found]


class CallableDetector(_Lazy):
    """A user function `fn(frame RGB uint8) -> iterable of (x, y, w, h[, score])`, named `module:attr`
    (imported again in each worker) or passed as an object (pickled to workers)."""

    name = "callable"

    def __init__(self, fn: Callable[[np.ndarray], Iterable[Sequence[float]]] | str) -> None:
        self.spec = fn if isinstance(fn, str) else None
        self._model = fn if not isinstance(fn, str) else None
        if self.spec is not None:
            self._model = _import_callable(self.spec)

    def __getstate__(self) -> dict:
        return dict(self.__dict__) if self.spec is None else super().__getstate__()

    def detect(self, frame: np.ndarray) -> list[Face]:
        if self._model is None:
            self._model = _import_callable(self.spec)
        try:
            found = list(self._model(frame) or ())
        except Exception as exc:  # noqa: BLE001 - a user's detector may raise anything
            raise DataError(f"face detector {self.spec or getattr(self._model, '__name__', self._model)!r} failed: "
                            f"{type(exc).__name__}: {exc}") from exc
        faces = []
        for row in found:
            values = [float(v) for v in row]
            if len(values) not in (4, 5):
                raise DataError(f"face detector {self.spec or self._model!r} must return (x, y, w, h[, score]) "
                                f"boxes, got {row!r}")
            faces.append(Face(*values))
        return faces


def _import_callable(spec: str) -> Callable:
    module_name, _, attr = spec.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise DataError(f"cannot import the face detector {spec!r}: {exc}") from None
    if not callable(fn):
        raise DataError(f"face detector {spec!r} is not callable")
    return fn


def make_detector(spec: str | Callable | None = "haar") -> Detector | None:
    """`haar` | `yunet:PATH` | `PATH.onnx` | `module:function` | a callable | `none`/None -> a detector or None."""
    if spec is None or spec == "none":
        return None
    if callable(spec) and not isinstance(spec, str):
        return spec if hasattr(spec, "detect") else CallableDetector(spec)
    text = str(spec).strip()
    if text == "haar":
        return HaarDetector()
    if text.startswith("haar:"):
        side = text[len("haar:"):]
        if not side.isdigit() or not 64 <= int(side) <= 4096:
            raise DataError(f"haar:SIDE takes the search size in pixels (64 to 4096), got {text!r}")
        return HaarDetector(max_side=int(side))
    if text.startswith("yunet:"):
        return YuNetDetector(text[len("yunet:"):])
    if text.lower().endswith(".onnx"):
        return YuNetDetector(text)
    if ":" in text and not Path(text).exists():
        return CallableDetector(text)
    raise DataError(f"unknown face detector {spec!r}; expected one of {', '.join(DETECTORS)}")


# ------------------------------------------------------------------ one box per clip (predict --face-crop)
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


DEFAULT_MARGIN = 0.15  # crop side = 1.3 x the face (hairline to chin): a tight face crop like DFEW's and MAFW's


def crop_faces(clip, detector, margin: float = DEFAULT_MARGIN) -> tuple[list[np.ndarray], bool]:
    """T frames `(H, W, 3)` uint8 -> (the face crops `(S, S, 3)`, True) or (the frames, False).

    Each frame contributes its surest face (`detector.best_face`); every frame gets the same box."""
    frames = list(clip)
    boxes = [b for b in (detector.best_face(f) for f in frames) if b is not None]
    if not boxes:
        return frames, False
    height, width = frames[0].shape[:2]
    top, left, side = clip_box(boxes, height, width, margin)
    return [f[top:top + side, left:left + side] for f in frames], True
