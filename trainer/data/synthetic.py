"""A synthetic dynamic-expression set: drawn faces whose expression builds up over the clip.

Seven classes in DFEW's label order. Every clip starts neutral and moves, from a random onset, to
its class's apex: mouth curve, width and opening, brow height and tilt, eye opening, and a change
of face colour (flushed, pale, ...). Each clip draws
its own face (position, size, skin tone, proportions), background, motion, blinks, noise, onset
and length (12-40 frames, so some clips are shorter than 16). It is a small but real task: the
class shows only in the later frames and in a few pixels.

`generate(out_dir)` writes `clips/<split>/<class>_<n>/000001.jpg ...`, the list files `train.txt`
and `test.txt` (`<absolute clip folder> <frames> <label>`) and `synthetic.json` (the parameters).
The output is a pure function of the parameters; an existing set with the same parameters is reused.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from promptkit.classes import BUILTIN_CLASS_SETS
from promptkit.fileio import write_atomic

from trainer.data.errors import DataError

CLASSES = BUILTIN_CLASS_SETS["dfew"]  # the 7-class label order (owned by promptkit.classes)
_SS = 3  # supersampling factor of the drawing canvas
_VERSION = 3  # bump whenever the drawing changes, so cached sets are rebuilt

# Apex of each class as offsets from neutral: mouth curve (+ = corners up), mouth width factor,
# mouth opening, brow raise, brow tilt (+ = inner ends up), eye opening factor, mouth asymmetry.
_APEX = {
    "happiness": dict(curve=1.0, width=1.25, open=0.35, raise_=0.0, tilt=0.0, eye=0.65, skew=0.0),
    "sadness": dict(curve=-0.8, width=0.9, open=0.0, raise_=0.1, tilt=0.9, eye=0.7, skew=0.0),
    "neutral": dict(curve=0.0, width=1.0, open=0.0, raise_=0.0, tilt=0.0, eye=1.0, skew=0.0),
    "anger": dict(curve=-0.3, width=0.8, open=0.15, raise_=-0.6, tilt=-1.0, eye=0.8, skew=0.0),
    "surprise": dict(curve=0.0, width=0.6, open=1.0, raise_=1.0, tilt=0.0, eye=1.5, skew=0.0),
    "disgust": dict(curve=-0.4, width=0.95, open=0.1, raise_=-0.4, tilt=-0.4, eye=0.6, skew=0.8),
    "fear": dict(curve=-0.25, width=1.3, open=0.5, raise_=0.7, tilt=0.8, eye=1.4, skew=0.0),
}

# Colour change of the face at the apex (RGB offsets): flushing in anger, pallor in fear, ... a
# coarse cue that small models trained from scratch pick up before the finer shapes.
_TINT = {
    "happiness": (25, 10, -15), "sadness": (-25, -10, 25), "neutral": (0, 0, 0),
    "anger": (50, -25, -25), "surprise": (15, 15, 15), "disgust": (-20, 30, -20),
    "fear": (30, 35, 45),
}


@dataclass(frozen=True)
class SyntheticSet:
    """Where a generated set lives."""

    root: Path
    train_list: Path
    test_list: Path
    classes: tuple[str, ...] = CLASSES


@dataclass(frozen=True)
class SynthParams:
    train_per_class: int = 40
    test_per_class: int = 15
    size: int = 64
    seed: int = 0
    min_frames: int = 12
    max_frames: int = 40
    quality: int = 90

    def __post_init__(self) -> None:
        if self.train_per_class < 1 or self.test_per_class < 1:
            raise DataError(f"clips per class must be >= 1, got train {self.train_per_class}, "
                            f"test {self.test_per_class}")
        if not 24 <= self.size <= 512:
            raise DataError(f"size must be in 24..512 pixels, got {self.size}")
        if not 2 <= self.min_frames <= self.max_frames <= 1000:
            raise DataError(f"need 2 <= min_frames <= max_frames <= 1000, "
                            f"got {self.min_frames}..{self.max_frames}")
        if not 30 <= self.quality <= 100:
            raise DataError(f"JPEG quality must be in 30..100, got {self.quality}")


def _clip_spec(rng: np.random.Generator, label: int, p: SynthParams) -> dict:
    """Everything random about one clip, drawn once."""
    n = int(rng.integers(p.min_frames, p.max_frames + 1))
    onset = rng.uniform(0.05, 0.45) * n
    return dict(
        n=n, label=label, onset=onset, apex=onset + rng.uniform(0.15, 0.35) * n,
        strength=rng.uniform(0.75, 1.0),
        cx=rng.uniform(0.45, 0.55), cy=rng.uniform(0.47, 0.53), scale=rng.uniform(0.75, 0.9),
        aspect=rng.uniform(0.75, 0.9), drift=rng.normal(0, 0.05, size=2) / n,
        skin=np.clip(rng.normal([200, 160, 130], [25, 22, 22]), 40, 215),
        bg=rng.uniform(50, 210, size=3), bg2=rng.uniform(50, 210, size=3),
        eye_gap=rng.uniform(0.34, 0.44), eye_y=rng.uniform(-0.2, -0.1), mouth_y=rng.uniform(0.35, 0.45),
        mouth_w=rng.uniform(0.32, 0.42), brow_w=rng.uniform(3.0, 4.0),
        blinks=set(rng.choice(n, size=int(rng.integers(0, 3)), replace=False).tolist()),
        noise=rng.uniform(2, 5),
    )


def _intensity(spec: dict, t: int) -> float:
    if spec["label"] == CLASSES.index("neutral") or t <= spec["onset"]:
        return 0.0
    x = min(1.0, (t - spec["onset"]) / max(spec["apex"] - spec["onset"], 1e-6))
    return spec["strength"] * (3 * x * x - 2 * x * x * x)  # smooth ease-in-out


def _mouth(d: ImageDraw.ImageDraw, cx, cy, half_w, curve, opening, skew, unit) -> None:
    xs = np.linspace(-1, 1, 21)
    arc = 1 - xs ** 2  # (21,) 1 at the centre, 0 at the corners
    bend = curve * 0.14 * unit * arc  # centre below the corners when curve > 0 (smile)
    tilt = -skew * 0.12 * unit * np.clip(xs, 0, None)  # one corner pulled up (disgust)
    upper = cy + bend + tilt - opening * 0.1 * unit * arc
    lower = cy + bend + tilt + opening * 0.25 * unit * arc
    pts_up = [(cx + x * half_w, y) for x, y in zip(xs, upper)]
    pts_lo = [(cx + x * half_w, y) for x, y in zip(xs, lower)]
    width = max(2, int(0.06 * unit))
    if opening > 0.05:
        d.polygon(pts_up + pts_lo[::-1], fill=(60, 20, 25))
    d.line(pts_up, fill=(120, 40, 45), width=width)
    d.line(pts_lo, fill=(120, 40, 45), width=width)


def _eyes_and_brows(d, cx, cy, unit, spec, k, blink) -> None:
    a = _APEX[CLASSES[spec["label"]]]
    eye_open = 1 + k * (a["eye"] - 1)
    if blink:
        eye_open = 0.1
    raise_, tilt = k * a["raise_"], k * a["tilt"]
    ew, eh = 0.12 * unit, 0.08 * unit * eye_open
    ey = cy + spec["eye_y"] * unit
    for side in (-1, 1):
        ex = cx + side * spec["eye_gap"] * unit / 2
        if eh > 0.012 * unit:
            d.ellipse([ex - ew, ey - eh, ex + ew, ey + eh], fill=(245, 245, 245), outline=(40, 30, 30),
                      width=max(1, int(0.02 * unit)))
            r = min(eh, 0.05 * unit)
            d.ellipse([ex - r, ey - r, ex + r, ey + r], fill=(35, 25, 20))
        else:
            d.line([(ex - ew, ey), (ex + ew, ey)], fill=(40, 30, 30), width=max(2, int(0.03 * unit)))
        by = ey - (0.15 + 0.09 * raise_) * unit
        inner = (ex - side * ew * 1.1, by - 0.07 * tilt * unit)
        outer = (ex + side * ew * 1.2, by + 0.02 * tilt * unit)
        d.line([inner, outer], fill=(60, 40, 30), width=max(2, int(spec["brow_w"] * 0.012 * unit)))


def _draw_frame(spec: dict, t: int, p: SynthParams, rng: np.random.Generator) -> Image.Image:
    s = p.size * _SS
    img = spec["background"].copy()
    d = ImageDraw.Draw(img)
    k = _intensity(spec, t)
    cx = (spec["cx"] + spec["drift"][0] * t) * s
    cy = (spec["cy"] + spec["drift"][1] * t) * s
    unit = spec["scale"] * s  # head height
    hw, hh = unit * spec["aspect"] / 2, unit / 2
    skin = np.clip(spec["skin"] + k * np.asarray(_TINT[CLASSES[spec["label"]]]), 0, 255)
    d.ellipse([cx - hw, cy - hh, cx + hw, cy + hh], fill=tuple(int(c) for c in skin))
    _eyes_and_brows(d, cx, cy, unit, spec, k, t in spec["blinks"])
    a = _APEX[CLASSES[spec["label"]]]
    half_w = spec["mouth_w"] * unit / 2 * (1 + k * (a["width"] - 1))
    _mouth(d, cx, cy + spec["mouth_y"] * unit * 0.75, half_w, k * a["curve"], k * a["open"],
           k * a["skew"], unit)
    small = np.asarray(img.resize((p.size, p.size), Image.BOX), dtype=np.float32)
    small = small + rng.normal(0, spec["noise"], size=small.shape)
    return Image.fromarray(np.clip(small, 0, 255).astype(np.uint8))


def _write_clip(folder: Path, spec: dict, p: SynthParams, rng: np.random.Generator) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    s = p.size * _SS
    grad = np.linspace(0, 1, s)[:, None, None]  # (S, 1, 1) vertical background gradient
    bg = (spec["bg"] * (1 - grad) + spec["bg2"] * grad).repeat(s, axis=1)  # (S, S, 3)
    spec = {**spec, "background": Image.fromarray(bg.astype(np.uint8))}
    for t in range(spec["n"]):
        _draw_frame(spec, t, p, rng).save(folder / f"{t + 1:06d}.jpg", quality=p.quality)


def _existing(root: Path, manifest: dict) -> SyntheticSet | None:
    try:
        old = json.loads((root / "synthetic.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    lists = root / "train.txt", root / "test.txt"
    if old == manifest and all(p.is_file() for p in lists):
        return SyntheticSet(root, *lists)
    return None


def generate(out_dir: Path | str, *, train_per_class: int = 40, test_per_class: int = 15,
             size: int = 64, seed: int = 0, min_frames: int = 12, max_frames: int = 40,
             quality: int = 90) -> SyntheticSet:
    """Write a synthetic set under `out_dir` (or reuse one made there with the same parameters)."""
    p = SynthParams(train_per_class, test_per_class, size, seed, min_frames, max_frames, quality)
    root = Path(out_dir).expanduser().resolve()
    manifest = {"format": "dferclip-synthetic", "version": _VERSION, "classes": list(CLASSES), **asdict(p)}
    found = _existing(root, manifest)
    if found is not None:
        return found
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} exists and is not a folder; choose another --out")
    (root / "synthetic.json").unlink(missing_ok=True)
    if (root / "clips").exists():
        shutil.rmtree(root / "clips")  # a set with other parameters: rebuild it whole
    root.mkdir(parents=True, exist_ok=True)
    for split, per_class, tag in (("train", p.train_per_class, 1), ("test", p.test_per_class, 2)):
        lines = []
        for label, name in enumerate(CLASSES):
            for i in range(per_class):
                rng = np.random.default_rng([p.seed, tag, label, i])
                spec = _clip_spec(rng, label, p)
                folder = root / "clips" / split / f"{name}_{i:04d}"
                _write_clip(folder, spec, p, rng)
                lines.append(f"{folder} {spec['n']} {label}\n")
        write_atomic(root / f"{split}.txt", "".join(lines))
    write_atomic(root / "synthetic.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return SyntheticSet(root, root / "train.txt", root / "test.txt")
