"""Clip lists: the `<clip> <frames> <label>` list files, the datasets' split CSVs and plain CSVs.

Accepted inputs (`read_annotations` picks the format from the content):
- list file: one clip per line, `<clip folder or video> <number of frames> <label>` separated by
  whitespace (the path may contain spaces; the last two fields are numbers). `<clip> <label>` is
  accepted too (the frame count is then read from the folder). Blank lines and `#` lines are skipped.
- DFEW split CSV (`EmoLabel_DataSplit/train(single-labeled)/set_1.csv`): columns `video_name,label`,
  labels 1-7 (shifted to 0-6 here); the clip folders are looked up under the data root.
- plain CSV with a header holding `path` and `label` (and optionally `num_frames`); a label is an
  integer index or, when `classes` is given, a class name.

List files written on someone else's machine carry absolute paths that do not exist here. With
`data_root`, a path that does not exist is remapped to the longest suffix of it that exists under
the data root (`/data/DFEW/Clip/clip_224x224/00001` -> `<root>/Clip/clip_224x224/00001`); the
matching prefix is remembered, so the search runs once per list, not once per clip. A match on
the last component alone (`00001`, which every numbered dataset has) is refused when most listed
frame counts disagree with the folders found, or when the names are numbered and the list has no
frame counts to confirm them; otherwise it is accepted with a warning that says how it matched.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Sequence

from trainer.data.errors import DataError
from trainer.data.registry import dataset_spec

log = logging.getLogger(__name__)
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
# Folders under a DFEW root that may hold the per-clip frame folders named by `video_name`.
_DFEW_FRAME_DIRS = ("Clip/clip_224x224", "clip_224x224", "DFEW_Frame_Face", "Clip/clip_224x224_16f",
                    "faces", "frames", "Clip", ".")


@dataclass(frozen=True)
class ClipRecord:
    """One clip: a folder of frames or a video file, the frame count its list claims, a label index.

    `source` names where the record came from (`list.txt:12`) for error messages.
    """

    path: Path
    num_frames: int | None
    label: int
    source: str = ""


class PathRemapper:
    """Maps paths from another machine onto `data_root` by their longest existing suffix."""

    def __init__(self, data_root: Path | str | None, base: Path | None = None) -> None:
        self.data_root = Path(data_root).expanduser() if data_root is not None else None
        self.base = base
        self._prefixes: list[tuple[PurePath, Path]] = []  # (foreign prefix, local replacement)
        self._kept: dict[PurePath, int] = {}  # foreign prefix -> path components matched below it
        self.name_only: list[tuple[str, Path]] = []  # (listed path, match) found by the last component alone
        self.remapped = 0

    def __call__(self, raw: str) -> Path:
        path = Path(raw).expanduser()
        if not path.is_absolute():
            return self._relative(path)
        if self.data_root is None or path.exists():
            return path
        for foreign, local in self._prefixes:
            if path.is_relative_to(foreign):
                candidate = local / path.relative_to(foreign)
                if candidate.exists():
                    return self._matched(raw, candidate, self._kept[foreign])
        found = self._search(path)
        return self._matched(raw, found[0], found[1]) if found is not None else path

    def _matched(self, raw: str, candidate: Path, kept: int) -> Path:
        self.remapped += 1
        if kept == 1:
            self.name_only.append((raw, candidate))
        return candidate

    def check_name_only(self, records: Sequence["ClipRecord"], list_path: Path) -> None:
        """Refuse clips found under the data root by their last path component alone when that is
        ambiguous (numbered folders without frame counts to confirm them) or when most listed frame
        counts disagree with the folders found; otherwise log how the clips were matched."""
        if not self.name_only:
            if self.remapped:
                log.info("%s: %d clip path(s) remapped onto %s by their longest existing suffix",
                         list_path.name, self.remapped, self.data_root)
            return
        by_path = {r.path: r for r in records}
        raw, example = self.name_only[0]
        checked = disagree = 0
        for _, found in self.name_only[:500]:
            rec = by_path.get(found)
            if rec is None or rec.num_frames is None or not found.is_dir():
                continue
            checked += 1
            disagree += _count_images(found) != rec.num_frames
        n = len(self.name_only)
        matched = (f"{list_path.name}: {n} of {len(records)} clip(s) were found under --data-root "
                   f"{self.data_root} by their folder name alone (e.g. {raw} -> {example})")
        expected = "/".join(Path(raw).parts[-3:])
        advice = (f"pass the --data-root under which the list's paths end (e.g. a folder holding {expected}), "
                  "or write the list with paths relative to it")
        if checked and disagree * 2 > checked:
            raise DataError(f"{matched}, and {disagree} of {checked} listed frame counts disagree with those "
                            f"folders: probably the wrong --data-root; {advice}")
        numbered = sum(Path(r).name.isdigit() for r, _ in self.name_only)
        if not checked and numbered * 2 > n:
            raise DataError(f"{matched}; numbered clip names recur in every dataset and the list has no frame "
                            f"counts to confirm them, so the match is ambiguous; {advice}")
        log.warning("%s; %d of %d listed frame counts agree", matched, checked - disagree, checked)

    def _relative(self, path: Path) -> Path:
        roots = [r for r in (self.data_root, self.base) if r is not None]
        for root in roots:
            if (root / path).exists():
                return root / path
        return (roots[0] / path) if roots else path

    def _search(self, path: Path) -> tuple[Path, int] | None:
        parts = path.parts[1:]  # without the anchor
        for k in range(len(parts), 0, -1):  # longest suffix first
            candidate = self.data_root / Path(*parts[-k:])
            if candidate.exists():
                foreign = PurePath(path.anchor, *parts[:-k])
                self._prefixes.append((foreign, self.data_root))
                self._kept[foreign] = k
                return candidate, k
        return None


def _count_images(folder: Path) -> int:
    try:
        return sum(1 for e in os.scandir(folder) if e.name.lower().endswith(_IMAGE_SUFFIXES))
    except OSError:
        return -1


def _parse_label(text: str, where: str, classes: Sequence[str] | None) -> int:
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    if classes:
        lowered = [c.lower() for c in classes]
        if text.lower() in lowered:
            return lowered.index(text.lower())
        raise DataError(f"{where}: label {text!r} is not a class index nor one of {list(classes)}")
    raise DataError(f"{where}: label {text!r} is not an integer class index")


def _check_label(label: int, where: str, num_classes: int | None) -> None:
    if label < 0 or (num_classes is not None and label >= num_classes):
        hint = f"0..{num_classes - 1}" if num_classes is not None else "a non-negative index"
        raise DataError(f"{where}: label {label} is out of range (expected {hint}); "
                        "check the list file against the class set")


def _label(text: str, where: str, classes, num_classes, problems: list | None, shift: int = 0) -> int | None:
    """A checked label index; with `problems`, a bad one is noted there (None returned) instead of raised."""
    try:
        label = _parse_label(text, where, classes) - shift
        _check_label(label, where, num_classes)
    except DataError as exc:
        if problems is None:
            raise
        problems.append((where, "label", str(exc)))
        return None
    return label


def _bad_line(where: str, message: str, problems: list | None) -> None:
    if problems is None:
        raise DataError(message)
    problems.append((where, "format", message))


def _read_list_file(path: Path, remap: PathRemapper, classes, num_classes, problems=None) -> list[ClipRecord]:
    records = []
    with open(path, encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{path.name}:{lineno}"
            fields = line.rsplit(maxsplit=2)
            num_frames: int | None = None
            if len(fields) == 3 and fields[1].lstrip("-").isdigit():
                clip, frames_text, label_text = fields
                num_frames = int(frames_text)
            else:
                fields = line.rsplit(maxsplit=1)
                if len(fields) != 2:
                    _bad_line(where, f"{where}: expected '<clip folder> <number of frames> <label>', got {line!r}", problems)
                    continue
                clip, label_text = fields
            label = _label(label_text, where, classes, num_classes, problems)
            if label is None:
                continue
            records.append(ClipRecord(remap(clip), num_frames, label, where))
    return records


def _dfew_frames_root(csv_path: Path, data_root: Path | None, first_clip: str) -> Path:
    roots = [data_root] if data_root is not None else []
    roots.append(csv_path.resolve().parent.parent.parent)  # <root>/EmoLabel_DataSplit/<split>/x.csv
    looked = []
    for root in roots:
        for sub in _DFEW_FRAME_DIRS:
            folder = (root / sub).resolve()
            looked.append(str(folder))
            if (folder / first_clip).exists():
                return folder
    raise DataError(f"{csv_path.name}: cannot find the clip folder {first_clip!r}; looked in "
                    f"{', '.join(dict.fromkeys(looked))} (pass --data-root pointing at the DFEW folder)")


def _read_csv(path: Path, remap: PathRemapper, classes, num_classes, problems=None) -> list[ClipRecord]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise DataError(f"{path}: the CSV file is empty")
    header = [h.strip().lower() for h in rows[0]]
    if "video_name" in header and "label" in header:
        return _read_dfew_csv(path, rows, header, remap.data_root, num_classes, problems)
    if "path" not in header or "label" not in header:
        raise DataError(f"{path}: a CSV needs a header with 'path' and 'label' columns "
                        f"(or DFEW's 'video_name,label'); got {rows[0]!r}")
    ip, il = header.index("path"), header.index("label")
    inf = next((header.index(k) for k in ("num_frames", "frames") if k in header), None)
    records = []
    for lineno, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path.name}:{lineno}"
        if len(row) < len(header):
            _bad_line(where, f"{where}: expected {len(header)} columns, got {row!r}", problems)
            continue
        label = _label(row[il], where, classes, num_classes, problems)
        if label is None:
            continue
        frames = int(row[inf]) if inf is not None and row[inf].strip().isdigit() else None
        records.append(ClipRecord(remap(row[ip].strip()), frames, label, where))
    return records


def _read_dfew_csv(path, rows, header, data_root, num_classes, problems=None) -> list[ClipRecord]:
    iv, il = header.index("video_name"), header.index("label")
    body = [(n, r) for n, r in enumerate(rows[1:], 2) if any(c.strip() for c in r)]
    if not body:
        return []
    frames_root = _dfew_frames_root(path, data_root, body[0][1][iv].strip().zfill(5))
    records = []
    for lineno, row in body:
        where = f"{path.name}:{lineno}"
        label = _label(row[il], where, None, num_classes, problems, shift=1)  # DFEW's CSVs count labels from 1
        if label is None:
            continue
        records.append(ClipRecord(frames_root / row[iv].strip().zfill(5), None, label, where))
    return records


def read_annotations(path: Path | str, data_root: Path | str | None = None, *,
                     num_classes: int | None = None,
                     classes: Sequence[str] | None = None, problems: list | None = None) -> list[ClipRecord]:
    """Read a list file, a DFEW split CSV or a plain CSV into records (remapped onto `data_root`).

    A label outside `0..num_classes-1` raises DataError naming the file and line; with a `problems`
    list, bad lines are skipped and noted there as `(file:line, "label" | "format", message)`.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"annotation file not found: {path}")
    if num_classes is None and classes:
        num_classes = len(classes)
    remap = PathRemapper(data_root, base=path.parent)
    read = _read_csv if path.suffix.lower() == ".csv" else _read_list_file
    try:
        records = read(path, remap, classes, num_classes, problems)
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a UTF-8 text file; give a list file or CSV of clips") from None
    except OSError as exc:  # no permission, ...
        raise DataError(f"cannot read annotation file {path}: {exc.strerror or exc}") from None
    if not records and not problems:
        raise DataError(f"{path}: no clips listed")
    remap.check_name_only(records, path)
    return records


def clip_id(path: Path | str, list_path: Path | str, data_root: Path | str | None = None) -> str:
    """A clip's stable id, the key of clip-text sets: its path relative to `data_root` when it lies
    below it, else relative to the list file's folder when it lies below that, else its absolute
    path; always with `/` separators. The same list on another machine (remapped onto its data
    root) gives the same ids."""
    clip = Path(os.path.normpath(Path(path).expanduser().absolute()))
    roots = [Path(data_root).expanduser()] if data_root is not None else []
    roots.append(Path(list_path).expanduser().parent)
    for root in roots:
        base = Path(os.path.normpath(root.absolute()))
        if base in clip.parents:
            return clip.relative_to(base).as_posix()
    return clip.as_posix()


def _search_dirs(data_root: Path, dataset: str) -> list[Path]:
    subs = (".", "annotation", "annotations", "splits", "EmoLabel_DataSplit")
    return [(data_root / s) for s in subs]


def _find_case_insensitive(folder: Path, relative: str) -> Path | None:
    exact = folder / relative
    if exact.is_file():
        return exact
    parent = (folder / relative).parent
    if not parent.is_dir():
        return None
    wanted = Path(relative).name.lower()
    for entry in parent.iterdir():
        if entry.name.lower() == wanted and entry.is_file():
            return entry
    return None


def standard_split(dataset: str, data_root: Path | str, fold: int = 1) -> tuple[Path, Path]:
    """The (train, test) split files of `dataset` for `fold`, found under `data_root`.

    Looks for the authors' annotation names (`annotation/DFEW_set_1_train.txt`, `FERV39K_train.txt`,
    `MAFW_set_1_train.txt`) and common variants, then DFEW's own split CSVs; raises DataError listing
    the places it looked when nothing is found.
    """
    spec = dataset_spec(dataset)
    name = spec.name
    if not isinstance(fold, int) or not 1 <= fold <= spec.folds:
        raise DataError(f"{name} has folds 1..{spec.folds}, got {fold!r}")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise DataError(f"data root not found: {root}")
    looked: list[str] = []
    for folder in _search_dirs(root, name):
        train_names, test_names = spec.split_names(fold, "train"), spec.split_names(fold, "test")
        for train_name, test_name in zip(train_names, test_names):
            looked.append(str(folder / train_name))
            train = _find_case_insensitive(folder, train_name)
            test = _find_case_insensitive(folder, test_name)
            if train is not None and test is not None:
                return train, test
    shown = "; ".join(looked[:8]) + (f"; ... ({len(looked)} places)" if len(looked) > 8 else "")
    raise DataError(f"no {name} fold {fold} split files under {root}; looked for {shown}. "
                    "Pass --train-list/--test-list instead")
