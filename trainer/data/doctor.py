"""`trainer doctor`: check a clip list against the disk before a run, and write a corrected copy.

Every line of a list file, a DFEW split CSV or a plain CSV (`read_annotations`, with `--data-root`
remapping) is checked: the clip exists (a folder with frames, or a video file), the listed frame count
matches the frames on disk, no frame file is empty (`deep`: every frame decodes, videos are opened),
the clip has at least `segments` frames, no clip is listed twice, labels are in the class set, and no
clip is also in the test list. Frames are counted by listing folders (`os.scandir`), so a 12,000-line
list takes seconds; only `deep` reads them.

Findings are `(line, clip, detail)` per category. `missing`, `bad_labels`, `overlap` and `malformed`
make a run fail or learn from wrong data (`Diagnosis.fatal`); the others are warnings (the loader pads
short clips and trusts the folder over the list).
"""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from promptkit.fileio import write_atomic

from trainer.data.annotations import ClipRecord, read_annotations
from trainer.data.decode import IMAGE_EXTS, count_video_frames, is_video, list_frames, read_image, reason
from trainer.errors import DataError

CATEGORIES = ("missing", "frame_count_mismatch", "unreadable_frames", "short", "duplicates", "bad_labels", "overlap", "malformed")
FATAL = ("missing", "bad_labels", "overlap", "malformed")


@dataclass(frozen=True)
class Finding:
    line: str  # file:line
    clip: str
    detail: str


@dataclass
class Diagnosis:
    list_path: Path
    clips: int
    findings: dict[str, list[Finding]]
    labels: dict[str, int]
    records: list[ClipRecord] = field(default_factory=list)
    on_disk: dict[str, int] = field(default_factory=dict)  # file:line -> frames found (folders; videos with deep)
    dropped: set[str] = field(default_factory=set)  # file:line of the records a fix drops

    @property
    def fatal(self) -> bool:
        return any(self.findings[k] for k in FATAL)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"list": str(self.list_path), "clips": self.clips}
        for key in CATEGORIES:
            out[key] = [vars(f) for f in self.findings[key]]
        out["labels"] = self.labels
        out["ok"] = not self.fatal
        return out


def _count_frames(folder: Path) -> tuple[int, int]:
    """(image files, empty image files) of a folder, from one directory listing and a stat per frame."""
    frames = empty = 0
    with os.scandir(folder) as entries:
        for e in entries:
            if os.path.splitext(e.name)[1].lower() in IMAGE_EXTS:
                frames += 1
                if e.stat().st_size == 0:
                    empty += 1
    return frames, empty


def _deep_folder(folder: Path) -> list[str]:
    bad = []
    for path in list_frames(folder):
        try:
            read_image(path)
        except Exception as exc:  # noqa: BLE001 - decoders raise many types on damage
            bad.append(f"{path.name} ({reason(exc)})")
    return bad


def _check_clip(rec: ClipRecord, deep: bool, segments: int, found: dict[str, list[Finding]], on_disk: dict[str, int]) -> bool:
    """Check one clip on disk; False when it is missing."""
    clip = str(rec.path)
    note = lambda key, detail: found[key].append(Finding(rec.source, clip, detail))  # noqa: E731
    if rec.path.is_dir():
        try:
            n, empty = _count_frames(rec.path)
        except OSError as exc:
            note("missing", f"cannot list the folder: {exc.strerror or exc}")
            return False
        if n == 0:
            note("missing", "the folder has no JPEG/PNG frames")
            return False
        if empty:
            note("unreadable_frames", f"{empty} empty (0-byte) frame file(s)")
        elif deep:
            bad = _deep_folder(rec.path)
            if bad:
                note("unreadable_frames", f"{len(bad)} frame(s) do not decode, e.g. {bad[0]}")
    elif rec.path.is_file() and is_video(rec.path):
        if rec.path.stat().st_size == 0:
            note("missing", "the video file is empty (0 bytes)")
            return False
        if not deep:
            return True
        try:
            n = count_video_frames(rec.path)
        except DataError as exc:
            note("unreadable_frames", str(exc))
            return True
    elif rec.path.is_file():
        note("missing", "a file that is not a frame folder nor a known video type")
        return False
    else:
        note("missing", "no such folder or file")
        return False
    on_disk[rec.source] = n
    if rec.num_frames is not None and rec.num_frames != n:
        note("frame_count_mismatch", f"lists {rec.num_frames} frames, {n} on disk")
    if n < segments:
        note("short", f"{n} frames, fewer than the model's {segments} segments")
    return True


def _read(path: Path, data_root, classes) -> tuple[list[ClipRecord], list[tuple[str, str, str]]]:
    problems: list[tuple[str, str, str]] = []
    records = read_annotations(path, data_root, classes=classes, problems=problems)
    return records, problems


def diagnose(list_path: str | Path, *, test_list: str | Path | None = None, data_root: str | Path | None = None,
             classes: Sequence[str] | None = None, segments: int = 16, deep: bool = False) -> Diagnosis:
    """Check every line of `list_path` against the disk (see the module notes)."""
    list_path = Path(list_path).expanduser()
    records, problems = _read(list_path, data_root, classes)
    found: dict[str, list[Finding]] = {k: [] for k in CATEGORIES}
    for where, kind, message in problems:
        detail = message.split(": ", 1)[-1].split("; check the list file")[0]  # the advice is for `trainer run`
        found["bad_labels" if kind == "label" else "malformed"].append(Finding(where, "", detail))
    diag = Diagnosis(list_path, len(records) + len(problems), found, {}, records)
    first: dict[str, ClipRecord] = {}
    for rec in records:
        key = os.path.normpath(str(rec.path))
        if key in first:
            other = first[key]
            clash = f", with another label ({rec.label}, there {other.label})" if rec.label != other.label else ""
            found["duplicates"].append(Finding(rec.source, str(rec.path), f"same clip as {other.source}{clash}"))
            diag.dropped.add(rec.source)
            continue
        first[key] = rec
        if not _check_clip(rec, deep, segments, found, diag.on_disk):
            diag.dropped.add(rec.source)
    if test_list is not None:
        test_records, _ = _read(Path(test_list).expanduser(), data_root, classes)
        test_paths = {os.path.normpath(str(r.path)): r.source for r in test_records}
        for rec in records:
            other = test_paths.get(os.path.normpath(str(rec.path)))
            if other is not None and rec.source not in diag.dropped:
                found["overlap"].append(Finding(rec.source, str(rec.path), f"also in the test list ({other})"))
    counts = Counter(r.label for r in records)
    diag.labels = {(classes[i] if classes and i < len(classes) else str(i)): counts[i] for i in sorted(counts)}
    return diag


@dataclass
class FixSummary:
    out: Path
    kept: int
    dropped_missing: int
    dropped_duplicates: int
    counts_set: int
    paths_rewritten: int


def _line_no(source: str) -> int:
    return int(source.rsplit(":", 1)[1])


def _fixed_list_lines(diag: Diagnosis, text: str, summary: FixSummary) -> list[str]:
    by_line = {_line_no(r.source): r for r in diag.records}
    lines = []
    for n, raw in enumerate(text.splitlines(), 1):
        rec = by_line.get(n)
        if rec is None:  # blank, comment or a bad line: unchanged
            lines.append(raw)
            continue
        if rec.source in diag.dropped:
            continue
        line = raw.strip()
        fields = line.rsplit(maxsplit=2)
        if len(fields) == 3 and fields[1].lstrip("-").isdigit():
            path_text, label_text = fields[0], fields[2]
        else:
            path_text, label_text = line.rsplit(maxsplit=1)
        if Path(path_text).expanduser() != rec.path and Path(path_text).is_absolute():
            path_text = str(rec.path)  # remapped onto --data-root: write where it is here
            summary.paths_rewritten += 1
        count = diag.on_disk.get(rec.source, rec.num_frames)
        if count is not None and count != rec.num_frames:
            summary.counts_set += 1
        lines.append(f"{path_text} {count} {label_text}" if count is not None else f"{path_text} {label_text}")
        summary.kept += 1
    return lines


def _fixed_csv(diag: Diagnosis, text: str, summary: FixSummary) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    header = [h.strip().lower() for h in rows[0]] if rows else []
    frames_col = next((header.index(k) for k in ("num_frames", "frames") if k in header), None)
    by_line = {_line_no(r.source): r for r in diag.records}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for n, row in enumerate(rows, 1):
        rec = by_line.get(n)
        if rec is not None and rec.source in diag.dropped:
            continue
        if rec is not None:
            summary.kept += 1
            count = diag.on_disk.get(rec.source)
            if frames_col is not None and count is not None and row[frames_col].strip() != str(count):
                row = row[:frames_col] + [str(count)] + row[frames_col + 1:]
                summary.counts_set += 1
        writer.writerow(row)
    return buffer.getvalue()


def write_fixed(diag: Diagnosis, out: str | Path) -> FixSummary:
    """Write a corrected copy of the checked list to `out`: missing clips and repeated lines dropped,
    frame counts set to the frames on disk, paths remapped onto the data root written as found; every
    other line as it was. The checked list itself is never modified."""
    out = Path(out).expanduser()
    if out.resolve() == diag.list_path.resolve():
        raise DataError(f"--fix {out} would overwrite the list being checked; give another file name")
    summary = FixSummary(out, 0, len(diag.findings["missing"]), len(diag.findings["duplicates"]), 0, 0)
    text = diag.list_path.read_text(encoding="utf-8-sig")
    if diag.list_path.suffix.lower() == ".csv":
        content = _fixed_csv(diag, text, summary)
    else:
        content = "".join(line + "\n" for line in _fixed_list_lines(diag, text, summary))
    try:
        write_atomic(out, content)
    except OSError as exc:
        raise DataError(f"cannot write {out}: {exc.strerror or exc}") from None
    return summary
