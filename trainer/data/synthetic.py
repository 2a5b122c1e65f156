"""The synthetic dynamic-expression set (renderer v4): clips of the face world on disk.

Seven classes in DFEW's label order. Each clip is a drawn face (identity, pose, light and timing
drawn independently of the class) whose expression, a per-clip mixture of facial action units
(`trainer.world.aus`), builds up from neutral, holds and sometimes partly releases. The class
shows in shape only: brows, lids, nose lines, lips and jaw.

`generate(out_dir)` writes `clips/<split>/<n>/000001.jpg ...` (numbered folders, as DFEW and MAFW
have), the list files `train.txt` and `test.txt` (`<absolute clip folder> <frames> <label>`, the
authors' format) and, last, `synthetic.json` (the parameters). A set without its manifest is
unfinished and is never reused; a write failure removes what was written. The output is a pure
function of the parameters; an existing set with the same parameters is reused.

Only a folder this module made is ever rebuilt: it writes the marker `.dferclip-synthetic` before
anything else, and a non-empty folder holding neither that marker nor a synthetic set's manifest
(someone's dataset, say) is refused, never emptied.
"""

from __future__ import annotations

import errno
import json
import multiprocessing as mp
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from promptkit.fileio import write_atomic

from trainer.data.registry import SynthSettings
from trainer.errors import DataError
from trainer.world.aus import CLASSES, sample_apex
from trainer.world.clips import STYLES, render_frame, sample_clip

_VERSION = 4  # bump whenever the drawing changes, so cached sets are rebuilt
_MARKER = ".dferclip-synthetic"  # written first into a folder this module owns


@dataclass(frozen=True)
class SyntheticSet:
    """Where a generated set lives."""

    root: Path
    train_list: Path
    test_list: Path
    classes: tuple[str, ...] = CLASSES


@dataclass(frozen=True)
class SynthParams(SynthSettings):
    """The settings of one set (defaults: `trainer.data.registry.SynthSettings`), validated."""

    def __post_init__(self) -> None:
        if self.train_per_class < 1 or self.test_per_class < 1:
            raise DataError(f"clips per class must be >= 1, got train {self.train_per_class}, "
                            f"test {self.test_per_class}")
        if not 32 <= self.size <= 512:
            raise DataError(f"size must be in 32..512 pixels, got {self.size}")
        if not 2 <= self.min_frames <= self.max_frames <= 1000:
            raise DataError(f"need 2 <= min_frames <= max_frames <= 1000, "
                            f"got {self.min_frames}..{self.max_frames}")
        if not 30 <= self.quality <= 100:
            raise DataError(f"JPEG quality must be in 30..100, got {self.quality}")
        if self.style not in STYLES:
            raise DataError(f"style must be one of {', '.join(STYLES)}, got {self.style!r}")


def _write_clip(job: tuple[str, SynthParams, int, int, int]) -> int:
    """Render clip `index` of a split into `folder`; returns its frame count."""
    folder, p, tag, index, label = job
    rng = np.random.default_rng([p.seed, tag, index])
    spec = sample_clip(rng, sample_apex(rng, CLASSES[label]), p.min_frames, p.max_frames, p.style)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for t in range(spec.n):
        Image.fromarray(render_frame(spec, t, p.size, rng)).save(out / f"{t + 1:06d}.jpg", quality=p.quality)
    return spec.n


def _labels(p: SynthParams, per_class: int, tag: int) -> list[int]:
    labels = np.repeat(np.arange(len(CLASSES)), per_class)
    return np.random.default_rng([p.seed, tag, 0xC1A55]).permutation(labels).tolist()


def _existing(root: Path, manifest: dict) -> SyntheticSet | None:
    try:
        old = json.loads((root / "synthetic.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    lists = root / "train.txt", root / "test.txt"
    if old == manifest and all(p.is_file() for p in lists):
        return SyntheticSet(root, *lists)
    return None


def _owned(root: Path) -> bool:
    """Whether `root` is this module's to rebuild: absent, empty, marked, or a synthetic set."""
    if not root.exists() or (root.is_dir() and not any(root.iterdir())) or (root / _MARKER).is_file():
        return True
    try:
        return json.loads((root / "synthetic.json").read_text(encoding="utf-8")).get("format") == "dferclip-synthetic"
    except (OSError, ValueError, AttributeError):
        return False


def _render_split(root: Path, p: SynthParams, split: str, per_class: int, tag: int, workers: int) -> None:
    labels = _labels(p, per_class, tag)
    jobs = [(str(root / "clips" / split / f"{i + 1:05d}"), p, tag, i, label) for i, label in enumerate(labels)]
    if workers > 1:
        with mp.get_context("spawn").Pool(workers) as pool:
            counts = pool.map(_write_clip, jobs, chunksize=4)
    else:
        counts = [_write_clip(job) for job in jobs]
    lines = [f"{folder} {n} {label}\n" for (folder, _, _, _, label), n in zip(jobs, counts)]
    write_atomic(root / f"{split}.txt", "".join(lines))


def generate(out_dir: Path | str, *, workers: int = 1, **settings: Any) -> SyntheticSet:
    """Write a synthetic set under `out_dir` (or reuse one made there with the same parameters).

    `settings`: any of `SynthSettings`' fields (train_per_class, test_per_class, size, seed,
    min_frames, max_frames, quality, style), the others at their defaults there. `workers` processes
    render clips in parallel; the result does not depend on it."""
    p = SynthParams(**settings)
    root = Path(out_dir).expanduser().resolve()
    manifest = {"format": "dferclip-synthetic", "version": _VERSION, "classes": list(CLASSES), **asdict(p)}
    found = _existing(root, manifest)
    if found is not None:
        return found
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} exists and is not a folder; choose another --out")
    if not _owned(root):
        raise DataError(f"{root} is not empty and holds no synthetic set; nothing was changed there: "
                        f"give an empty or new folder (--out / data.synth_dir)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / _MARKER).write_text("made by trainer synth; this folder may be rebuilt by it\n", encoding="utf-8")
        (root / "synthetic.json").unlink(missing_ok=True)  # unfinished from here on
        if (root / "clips").exists():
            shutil.rmtree(root / "clips")  # a set with other parameters or an unfinished one: rebuild it
        for split, per_class, tag in (("train", p.train_per_class, 1), ("test", p.test_per_class, 2)):
            _render_split(root, p, split, per_class, tag, workers)
        write_atomic(root / "synthetic.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        shutil.rmtree(root / "clips", ignore_errors=True)
        for name in ("train.txt", "test.txt"):
            (root / name).unlink(missing_ok=True)
        reason = "no space left on the device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise DataError(f"cannot write the synthetic set to {root}: {reason}; nothing of it was kept") from exc
    return SyntheticSet(root, root / "train.txt", root / "test.txt")
