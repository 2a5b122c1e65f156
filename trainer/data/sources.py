"""What `trainer prepare` reads: clips found in its inputs, their ids, and their labels.

Inputs are video files and folders searched recursively; a folder that holds image files is one clip
of frames (not searched further). A clip's id is its path below the input it was found under, with
`/` turned into `__` and other unsafe characters into `_` (`happiness/clip 1.mp4` -> `happiness__clip_1`);
ids that would collide get a short hash of the full path.

Labels come from a CSV `path,label` (a path relative to the CSV's folder or absolute; a label a class
name or an index) or, without one, from the nearest parent folder named after a class. Without
`classes`, names are looked up in the built-in sets (dfew, then mafw: the one that labels most clips).
Clips without a label are kept (for `trainer predict`); they stay out of the list file.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from promptkit.classes import BUILTIN_CLASS_SETS

from trainer.data.decode import IMAGE_EXTS, VIDEO_EXTS
from trainer.errors import DataError

VIDEO_NAMES = "mp4, avi, mkv, webm, mov"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Source:
    """One input clip: a video file or a folder of frames, its id, and its label (None: unlabelled)."""

    path: Path
    kind: str  # "video" | "frames"
    clip_id: str
    label: int | None = None


def _has_images(names: Sequence[str]) -> bool:
    return any(os.path.splitext(n)[1].lower() in IMAGE_EXTS for n in names)


def _walk(folder: Path, exclude: Path | None) -> list[tuple[Path, str]]:
    found: list[tuple[Path, str]] = []
    for here, dirs, files in os.walk(folder):
        here_path = Path(here)
        if exclude is not None and (here_path == exclude or exclude in here_path.parents):
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if _has_images(files):
            found.append((here_path, "frames"))
            dirs[:] = []
            continue
        found.extend((here_path / f, "video") for f in sorted(files)
                     if os.path.splitext(f)[1].lower() in VIDEO_EXTS)
    return found


def find_clips(inputs: Sequence[str | Path], exclude: Path | None = None) -> list[tuple[Path, str, Path]]:
    """Inputs -> (clip path, kind, the root it was found under), in input order, each clip once."""
    if not inputs:
        raise DataError("give at least one input: a video file or a folder of videos or frames")
    exclude = exclude.resolve() if exclude is not None else None
    out, seen = [], set()
    for raw in inputs:
        path = Path(raw).expanduser()
        if not path.exists():
            raise DataError(f"input not found: {raw}")
        path = path.resolve()
        if path.is_file():
            found = [(path, "video", path.parent)]
        else:
            found = [(p, kind, path) for p, kind in _walk(path, exclude)]
            if not found:
                raise DataError(f"no videos ({VIDEO_NAMES}) or folders of frames under {raw}")
        for clip, kind, root in found:
            if clip not in seen:
                seen.add(clip)
                out.append((clip, kind, root))
    return out


def clip_ids(clips: Sequence[tuple[Path, str, Path]]) -> list[str]:
    """One file-system-safe id per clip, unique, the same for the same inputs."""
    names = []
    for clip, kind, root in clips:
        rel = clip.relative_to(root) if clip != root else Path(clip.name)
        if kind == "video":
            rel = rel.with_suffix("")
        parts = [_UNSAFE.sub("_", p).strip("._") or "clip" for p in rel.parts]
        names.append("__".join(parts))
    counts = Counter(names)
    return [n if counts[n] == 1 else f"{n}-{hashlib.sha1(str(c).encode()).hexdigest()[:6]}"
            for n, (c, _, _) in zip(names, clips)]


def _label_index(text: str, where: str, classes: Sequence[str]) -> int:
    text = text.strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(classes):
            raise DataError(f"{where}: label {index} is outside the class set (0..{len(classes) - 1}: {', '.join(classes)})")
        return index
    lowered = [c.lower() for c in classes]
    if text.lower() not in lowered:
        raise DataError(f"{where}: label {text!r} is not a class of the set ({', '.join(classes)}); pass --classes")
    return lowered.index(text.lower())


def _guess_classes(names: Sequence[str]) -> tuple[str, ...] | None:
    """The built-in class set that knows the most of these names (dfew before mafw on ties), or None."""
    lowered = [n.strip().lower() for n in names]
    best, hits = None, 0
    for set_name in ("dfew", "mafw"):
        known = set(BUILTIN_CLASS_SETS[set_name])
        n = sum(x in known for x in lowered)
        if n > hits:
            best, hits = BUILTIN_CLASS_SETS[set_name], n
    return best


def read_labels_csv(path: Path, classes: Sequence[str] | None) -> tuple[dict[Path, int], tuple[str, ...]]:
    """A CSV `path,label` -> ({resolved file: label index}, the class set used)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"labels file not found: {path}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [(n, r) for n, r in enumerate(csv.reader(fh), 1) if any(c.strip() for c in r)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path} is not a CSV text file ({exc})") from None
    if rows and [c.strip().lower() for c in rows[0][1][:2]] == ["path", "label"]:
        rows = rows[1:]
    if not rows:
        raise DataError(f"{path}: no labels listed (expected lines 'path,label')")
    for n, row in rows:
        if len(row) < 2:
            raise DataError(f"{path.name}:{n}: expected 'path,label', got {','.join(row)!r}")
    if classes is None:
        classes = _guess_classes([r[1] for _, r in rows if not r[1].strip().lstrip("-").isdigit()])
        if classes is None:
            raise DataError(f"{path}: the labels name no class of dfew or mafw; pass --classes (a set name, 'a,b,c' or a file)")
    labels: dict[Path, int] = {}
    for n, row in rows:
        where = f"{path.name}:{n}"
        file = Path(row[0].strip()).expanduser()
        file = file if file.is_absolute() else path.parent / file
        if not file.exists():
            raise DataError(f"{where}: {row[0].strip()} does not exist")
        labels[file.resolve()] = _label_index(row[1], where, classes)
    return labels, tuple(classes)


def _folder_label(clip: Path, root: Path, lowered: Sequence[str]) -> int | None:
    for parent in clip.parents:
        if parent.name.lower() in lowered:
            return lowered.index(parent.name.lower())
        if parent == root or parent == parent.parent:
            break
    return None


def label_sources(clips: Sequence[tuple[Path, str, Path]], labels_csv: Path | None,
                  classes: Sequence[str] | None) -> tuple[list[Source], tuple[str, ...] | None]:
    """Attach ids and labels to the clips found; returns the sources and the class set used."""
    ids = clip_ids(clips)
    if labels_csv is not None:
        table, classes = read_labels_csv(labels_csv, classes)
        return [Source(c, k, i, table.get(c)) for (c, k, _), i in zip(clips, ids)], classes
    if classes is None:
        parents = [p.name for c, _, root in clips for p in c.parents if p != root and root in p.parents]
        classes = _guess_classes(parents + [root.name for _, _, root in clips])
    if classes is None:
        return [Source(c, k, i) for (c, k, _), i in zip(clips, ids)], None
    lowered = [c.lower() for c in classes]
    return [Source(c, k, i, _folder_label(c, root, lowered)) for (c, k, root), i in zip(clips, ids)], tuple(classes)
