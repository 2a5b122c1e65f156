"""`trainer prepare`: raw videos (or frame folders) -> face-cropped frame folders, a list file, a manifest.

For each clip: decode every frame (optionally resampled to `fps`), detect faces in each, follow one
face (`trainer.data.track`), cut a steady square with `margin` around it, resize to `size`, and write
`out/clips/<id>/00001.jpg ...`. A clip is written to `out/clips/.tmp-<id>` and renamed when complete;
then its record goes to `out/.state/<id>.json` (atomic). A clip counts as done only when its record
exists, was made with the same settings, and (for `ok`) its folder exists, so an interrupted run
resumes where it stopped and a second run skips finished clips and writes the same list.

Clips where no face is followed in at least `min_face` of the frames, clips shorter than `min_frames`,
and unreadable inputs get that status in the manifest and stay out of `list.txt`; nothing is centre-
cropped behind the user's back (`detector="none"` centre-crops on purpose, for face-cropped input).
"""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing as mp
import os
import shutil
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from promptkit.fileio import make_folder, write_atomic

from trainer.data.decode import iter_video, list_frames, read_image, reason
from trainer.data.faces import DEFAULT_MARGIN, make_detector
from trainer.data.mainguard import check_main_guard
from trainer.data.sources import Source, find_clips, label_sources
from trainer.data.track import crop_square, follow_face
from trainer.errors import DataError

log = logging.getLogger(__name__)
STATUSES = ("ok", "no_face", "too_short", "unreadable")
_CACHE_BYTES = 512 << 20  # frames kept between the two passes; a longer clip is decoded twice
_VERSION = 1  # bump when the output of a clip changes for the same settings


@dataclass(frozen=True)
class PrepareConfig:
    """How clips are cut. `detector`: haar | yunet:MODEL.onnx | MODEL.onnx | module:function | none | a callable."""

    size: int = 224
    margin: float = DEFAULT_MARGIN
    fps: float | None = None
    detector: Any = "haar"
    min_frames: int = 16
    min_face: float = 0.5
    detect_every: int = 1
    quality: int = 95
    workers: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or not 16 <= self.size <= 4096:
            raise DataError(f"--size must be an integer from 16 to 4096 pixels, got {self.size!r}")
        if not 0 <= self.margin <= 2:
            raise DataError(f"--margin must be from 0 to 2 (a share of the face box on each side), got {self.margin!r}")
        if self.fps is not None and not 0 < self.fps <= 240:
            raise DataError(f"--fps must be above 0 and at most 240, got {self.fps!r}")
        if not isinstance(self.min_frames, int) or self.min_frames < 1:
            raise DataError(f"--min-frames must be a positive integer, got {self.min_frames!r}")
        if not 0 <= self.min_face <= 1:
            raise DataError(f"--min-face must be a share from 0 to 1, got {self.min_face!r}")
        if not isinstance(self.detect_every, int) or self.detect_every < 1:
            raise DataError(f"--detect-every must be a positive integer, got {self.detect_every!r}")
        if not 1 <= self.quality <= 100:
            raise DataError(f"JPEG quality must be from 1 to 100, got {self.quality!r}")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise DataError(f"--workers must be a positive integer, got {self.workers!r}")

    def fingerprint(self) -> dict[str, Any]:
        """The settings a finished clip depends on (workers do not change the output)."""
        det = self.detector if isinstance(self.detector, str) or self.detector is None else \
            getattr(self.detector, "__qualname__", type(self.detector).__qualname__)
        return {"size": self.size, "margin": self.margin, "fps": self.fps, "detector": det, "min_frames": self.min_frames,
                "min_face": self.min_face, "detect_every": self.detect_every, "quality": self.quality, "version": _VERSION}


@dataclass
class PrepareResult:
    out: Path
    list_path: Path
    manifest_path: Path
    classes: tuple[str, ...] | None
    entries: list[dict[str, Any]]
    skipped: int = 0  # clips already done by an earlier run
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def listed(self) -> int:
        return sum(1 for e in self.entries if e["status"] == "ok" and e.get("label") is not None)

    @property
    def unlabelled(self) -> int:
        return sum(1 for e in self.entries if e["status"] == "ok" and e.get("label") is None)


# ------------------------------------------------------------------ one clip
def _frames(source: Source, fps: float | None):
    """The frames of a clip in order; unreadable frames of a folder are skipped (and counted)."""
    if source.kind == "frames":
        for path in list_frames(source.path):
            try:
                yield read_image(path)
            except Exception as exc:  # noqa: BLE001 - decoders raise many types on damage
                log.warning("skipping unreadable frame %s (%s)", path, reason(exc))
        return
    yield from iter_video(source.path, fps)


def _scan(source: Source, cfg: PrepareConfig, detector) -> tuple[list, list | None, tuple[int, int], str | None]:
    """Pass 1: faces per frame, the frames themselves while they fit in memory, the frame size, and
    the decoder's error when the clip cannot be read (a failing detector raises: it is not the clip's fault)."""
    detections, cache, used, shape = [], [], 0, (0, 0)
    last = None
    frames = _frames(source, cfg.fps)
    for i in itertools.count():
        try:
            frame = next(frames)
        except StopIteration:
            break
        except DataError as exc:
            return [], None, shape, str(exc)
        shape = frame.shape[:2]
        searched = detector is not None and i % cfg.detect_every == 0
        detections.append(detector.detect(frame) if searched else None)
        last = frame
        if cache is not None:
            used += frame.nbytes
            if used <= _CACHE_BYTES:
                cache.append(frame)
            else:
                cache = None
    if detector is not None and detections and detections[-1] is None:  # the last frame is always searched
        detections[-1] = detector.detect(last)
    return detections, cache, shape, None


def _write_frames(frames, boxes, tmp: Path, cfg: PrepareConfig, n: int) -> int:
    import cv2

    width = max(5, len(str(n)))
    written = 0
    for i, frame in enumerate(frames):
        if i >= n:
            break
        crop = crop_square(frame, None if boxes is None else boxes[i], cfg.margin, cfg.size)  # (S, S, 3)
        target = tmp / f"{i + 1:0{width}d}.jpg"
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, cfg.quality])
        if not ok:
            raise DataError(f"cannot encode a JPEG for {target}")
        target.write_bytes(data.tobytes())
        written += 1
    return written


def process_clip(source: Source, out: Path, cfg: PrepareConfig, detector) -> dict[str, Any]:
    """Cut one clip into `out/clips/<id>`; returns its manifest record (without the label)."""
    entry: dict[str, Any] = {"source": str(source.path), "id": source.clip_id, "folder": None, "status": "ok",
                             "detail": "", "frames": 0, "face_share": None, "size": None, "boxes": []}
    detections, cache, (h, w), error = _scan(source, cfg, detector)
    if error is not None:
        return {**entry, "status": "unreadable", "detail": error}
    n = len(detections)
    entry.update(frames=n, size=[int(w), int(h)])
    if n == 0:
        return {**entry, "status": "unreadable", "detail": "no readable frame"}
    if n < cfg.min_frames:
        return {**entry, "status": "too_short", "detail": f"{n} frames, fewer than {cfg.min_frames}"}
    boxes = None
    if detector is not None:
        track = follow_face(detections, max_gap=n)
        entry["face_share"] = round(track.share if track is not None else 0.0, 4)
        if track is None or track.share < cfg.min_face:
            found = 0 if track is None else int(track.detected.sum())
            searched = sum(d is not None for d in detections)
            return {**entry, "status": "no_face", "detail": f"a face followed in {found} of {searched} searched frames"}
        boxes = track.boxes
        entry["boxes"] = np.round(boxes, 1).tolist()
    final = out / "clips" / source.clip_id
    tmp = out / "clips" / f".tmp-{source.clip_id}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        written = _write_frames(cache if cache is not None else _frames(source, cfg.fps), boxes, tmp, cfg, n)
        if written < n:  # the second decode gave fewer frames than the first
            n = written
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"cannot write {final}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    entry.update(folder=str(final), frames=n)
    return entry


# ------------------------------------------------------------------ resume
def _state_path(out: Path, clip_id: str) -> Path:
    return out / ".state" / f"{clip_id}.json"


def _finished(out: Path, source: Source, fingerprint: dict) -> dict[str, Any] | None:
    try:
        record = json.loads(_state_path(out, source.clip_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("settings") != fingerprint or record.get("source") != str(source.path):
        return None
    if record["status"] == "ok" and not Path(record["folder"]).is_dir():
        return None
    return record


def _commit(out: Path, entry: dict[str, Any], fingerprint: dict) -> dict[str, Any]:
    record = {**entry, "settings": fingerprint}
    try:
        write_atomic(_state_path(out, entry["id"]), json.dumps(record))
    except OSError as exc:
        raise DataError(f"cannot write to --out {out}: {exc.strerror or exc}") from None
    return record


# ------------------------------------------------------------------ the run
_WORKER: dict[str, Any] = {}


def _init_worker(cfg: PrepareConfig) -> None:
    import cv2

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle: it stops the workers
    cv2.setNumThreads(1)
    _WORKER["detector"] = make_detector(cfg.detector)


def _work(source: Source, out: Path, cfg: PrepareConfig, fingerprint: dict, detector: Any = _WORKER) -> dict[str, Any]:
    """Cut one clip and commit its record (in the worker, so a finished clip is kept whatever happens next).
    Without `detector`, the worker process's own (built by `_init_worker`)."""
    detector = _WORKER["detector"] if detector is _WORKER else detector
    return _commit(out, process_clip(source, out, cfg, detector), fingerprint)


def _remove_partial(out: Path) -> None:
    """Folders and records that a stopped run was writing: never trusted, removed at once."""
    for stale in (out / "clips").glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in (out / ".state").glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def _open_out(out: Path) -> None:
    try:
        make_folder(out / "clips")
        make_folder(out / ".state")
    except OSError as exc:
        raise DataError(f"cannot write to --out {out}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK) or not os.access(out / "clips", os.W_OK):
        raise DataError(f"cannot write to --out {out}: permission denied")
    _remove_partial(out)


def _run(todo: Sequence[Source], out: Path, cfg: PrepareConfig, fingerprint: dict,
         on_clip: Callable[[dict], None], detector) -> None:
    """Cut `todo` in this process with `detector` (one worker), or in spawned workers that build their own."""
    if cfg.workers == 1 or len(todo) <= 1:
        for source in todo:
            on_clip(_work(source, out, cfg, fingerprint, detector))
        return
    check_main_guard("prepare's worker processes", instead="workers=1")
    # spawned, not forked: a fork after OpenCV has started its thread pool can deadlock in the child
    pool = ProcessPoolExecutor(max_workers=min(cfg.workers, len(todo)), mp_context=mp.get_context("spawn"),
                               initializer=_init_worker, initargs=(cfg,))
    try:
        pending = {pool.submit(_work, s, out, cfg, fingerprint) for s in todo}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                on_clip(future.result())
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):  # stop now; finished clips are committed
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        _remove_partial(out)
        raise
    pool.shutdown(wait=True)


def _list_lines(entries: Sequence[dict[str, Any]]) -> str:
    return "".join(f"{e['folder']} {e['frames']} {e['label']}\n" for e in entries
                   if e["status"] == "ok" and e.get("label") is not None)


def prepare(inputs: Sequence[str | Path], out: str | Path, *, labels: str | Path | None = None,
            classes: Sequence[str] | None = None, config: PrepareConfig | None = None,
            on_start: Callable[[int, int], None] | None = None,
            on_clip: Callable[[dict], None] | None = None) -> PrepareResult:
    """Cut every clip of `inputs` into `out`; write `out/list.txt`, `out/manifest.jsonl`, `out/classes.txt`.

    `on_start(total, already_done)` and `on_clip(record)` report progress (the CLI draws a bar).
    """
    cfg = config or PrepareConfig()
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file, not a folder")
    detector = make_detector(cfg.detector)  # a bad spec, a missing or broken model fails before any work
    if detector is not None:
        detector.detect(np.zeros((64, 64, 3), dtype=np.uint8))
    sources, class_set = label_sources(find_clips(inputs, exclude=out), Path(labels) if labels else None,
                                       tuple(classes) if classes else None)
    _open_out(out)
    fingerprint = cfg.fingerprint()
    records: dict[str, dict] = {}
    todo = []
    for source in sources:
        done = _finished(out, source, fingerprint)
        if done is None:
            todo.append(source)
        else:
            records[source.clip_id] = done
    if on_start is not None:
        on_start(len(sources), len(records))

    def finished(record: dict) -> None:
        records[record["id"]] = record
        if on_clip is not None:
            on_clip(record)

    _run(todo, out, cfg, fingerprint, finished, detector)
    entries = []
    for source in sources:
        record = {k: v for k, v in records[source.clip_id].items() if k != "settings"}
        record["label"] = source.label
        record["class"] = class_set[source.label] if class_set and source.label is not None else None
        entries.append(record)
    return _write_outputs(out, entries, class_set, skipped=len(sources) - len(todo))


def _write_outputs(out: Path, entries: list[dict], class_set, skipped: int) -> PrepareResult:
    list_path, manifest_path = out / "list.txt", out / "manifest.jsonl"
    try:
        if class_set:
            write_atomic(out / "classes.txt", "".join(f"{c}\n" for c in class_set))
        write_atomic(manifest_path, "".join(json.dumps(e) + "\n" for e in entries))
        write_atomic(list_path, _list_lines(entries))
    except OSError as exc:
        raise DataError(f"cannot write to --out {out}: {exc.strerror or exc}") from None
    counts = {s: 0 for s in STATUSES}
    for e in entries:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    return PrepareResult(out, list_path, manifest_path, class_set, entries, skipped, counts)
