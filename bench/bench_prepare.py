"""`trainer prepare` and `trainer doctor` at work: throughput, face recall and crop centring, doctor at scale.

1. Throughput: `--clips` videos of 640x360, 2 s at 25 fps (50 frames), scikit-image's astronaut moving
   and zooming over clutter (trainer.data.scenes), cut by `prepare` with `--workers` processes, for each
   `--detect-every`. Clips per minute = clips / wall time of the whole call (worker start-up included).
2. Quality, on the same face videos plus `--clips // 3` scenes without a face: per-frame recall of the
   raw detector (a detection within half a face of the true centre), the share of frames where the
   followed face was detected, the crop centring error (distance from the crop centre to the true face
   centre, in face sizes: mean, 95th percentile, max), the crop scale against the true face, and the
   status of the no-face scenes. `--small`: faces of 10-16% of the frame height instead of 25-45%.
3. Doctor: a DFEW-like tree of `--doctor-lines` clip folders (16 one-byte frames each) and an authors'
   list with another machine's absolute paths (every 50th frame count off by one); the time of
   `diagnose(..., data_root=...)` and of `write_fixed`.

Run from the repository root:  .venv/bin/python bench/bench_prepare.py [--clips 24] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from trainer.data.decode import iter_video
from trainer.data.doctor import diagnose, write_fixed
from trainer.data.faces import make_detector
from trainer.data.prepare import PrepareConfig, prepare
from trainer.data.scenes import centring_error, face_scene, hits


def make_scenes(root: Path, n_face: int, n_none: int, small: bool) -> dict[str, list | None]:
    truth = {}
    lo, hi = (0.1, 0.16) if small else (0.25, 0.45)  # face height / frame height, zooming in or out
    for i in range(n_face):
        scene = face_scene(root / "in" / f"face{i:03d}.mp4", size=(640, 360), frames=50, seed=i,
                           face_height=(lo, hi) if i % 2 else (hi, lo))
        truth[scene.path.name] = scene.boxes
    for i in range(n_none):
        scene = face_scene(root / "in" / f"none{i:03d}.mp4", size=(640, 360), frames=50, seed=1000 + i, face=False)
        truth[scene.path.name] = None
    return truth


def throughput(root: Path, workers: int, every: int, detector: str) -> tuple[float, object]:
    start = time.perf_counter()
    result = prepare([root / "in"], root / f"out-{every}-{detector}",
                     config=PrepareConfig(workers=workers, detect_every=every, detector=detector))
    return time.perf_counter() - start, result


def quality(result, truth: dict, detector_recall: dict) -> None:
    errors, scales, shares = [], [], []
    for entry in result.entries:
        boxes = truth[Path(entry["source"]).name]
        if boxes is None:
            continue
        shares.append(entry["face_share"] or 0.0)
        if entry["status"] != "ok":
            continue
        for box, t in zip(entry["boxes"], boxes):
            errors.append(centring_error(box, t))
            scales.append(box[2] / np.sqrt(t[2] * t[3]))
    statuses = [e["status"] for e in result.entries if truth[Path(e["source"]).name] is None]
    ok = sum(e["status"] == "ok" for e in result.entries if truth[Path(e["source"]).name] is not None)
    print(f"  face clips ok: {ok}/{len(shares)}; raw detector recall per frame: {detector_recall['hit']}/{detector_recall['n']} "
          f"({100 * detector_recall['hit'] / detector_recall['n']:.1f}%); followed-face share: mean {statistics.mean(shares):.3f}")
    if not errors:
        print("  centring error: no face clip was ok")
    else:
        print(f"  centring error (face sizes): mean {np.mean(errors):.3f}, p95 {np.percentile(errors, 95):.3f}, max {np.max(errors):.3f}; "
              f"crop face side / true face size: mean {np.mean(scales):.2f} (sd {np.std(scales):.2f})")
    print(f"  no-face scenes: {', '.join(f'{s} {statuses.count(s)}' for s in sorted(set(statuses)))}")


def raw_recall(root: Path, truth: dict, detector) -> dict:
    hit, n = 0, 0
    for name, boxes in truth.items():
        if boxes is None:
            continue
        for frame, box in zip(iter_video(root / "in" / name), boxes):
            found = [(f.x, f.y, f.w, f.h) for f in detector.detect(frame)]
            hit += hits(found, box)
            n += 1
    return {"hit": hit, "n": n}


def doctor_bench(root: Path, lines: int) -> None:
    clips = root / "DFEW/Clip/clip_224x224"
    t0 = time.perf_counter()
    rows = []
    for i in range(1, lines + 1):
        folder = clips / f"{i:05d}"
        folder.mkdir(parents=True)
        for k in range(1, 17):
            (folder / f"{k:05d}.jpg").write_bytes(b"x")
        rows.append(f"/home/them/datasets/DFEW/Clip/clip_224x224/{i:05d} {16 + (i % 50 == 0)} {i % 7}\n")
    listed = root / "DFEW_set_1_train.txt"
    listed.write_text("".join(rows))
    print(f"doctor: built {lines} clip folders x 16 frames in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    diag = diagnose(listed, data_root=root / "DFEW")
    took = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary = write_fixed(diag, root / "fixed.txt")
    fix_took = time.perf_counter() - t0
    print(f"  diagnose {diag.clips} lines with --data-root remapping: {took:.2f} s "
          f"({len(diag.findings['frame_count_mismatch'])} frame-count mismatches, {len(diag.findings['missing'])} missing); "
          f"--fix: {fix_took:.2f} s ({summary.counts_set} counts set, {summary.paths_rewritten} paths rewritten)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--detect-every", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--doctor-lines", type=int, default=12000)
    parser.add_argument("--detectors", nargs="+", default=["haar"], help="haar | haar:SIDE | yunet:MODEL.onnx, each run in turn")
    parser.add_argument("--small", action="store_true", help="faces of 10-16%% of the frame height (36-58 px) instead of 25-45%%")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        truth = make_scenes(root, args.clips, max(1, args.clips // 3), args.small)
        n = len(truth)
        for det in args.detectors:
            recall = raw_recall(root, truth, make_detector(det))
            for every in args.detect_every:
                took, result = throughput(root, args.workers, every, det)
                print(f"prepare --detector {det} --workers {args.workers} --detect-every {every}: {n} clips (640x360, 50 frames) in {took:.1f} s = "
                      f"{60 * n / took:.1f} clips/min (load average {os.getloadavg()[0]:.1f})")
                quality(result, truth, recall)
        if args.doctor_lines:
            doctor_bench(root, args.doctor_lines)


if __name__ == "__main__":
    main()
