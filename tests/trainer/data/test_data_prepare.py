"""`trainer prepare` on real faces: scikit-image's astronaut moving and zooming over clutter (true boxes
known), scenes without a face, frame folders, broken and short clips; resume, labels and bad input."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
from cli_runner import trainer_cli as cli

from trainer.data.prepare import PrepareConfig, prepare
from trainer.data.scenes import centring_error, face_scene, hits
from trainer.errors import DataError

pytest.importorskip("skimage")
pytest.importorskip("av")
FAST = dict(size=64)  # small crops keep the tests fast


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    made = {
        "happiness/a": face_scene(root / "in/happiness/a.mp4", seed=1),
        "happiness/b": face_scene(root / "in/happiness/b.avi", seed=2, face_height=(0.5, 0.3)),  # zooms out
        "sadness/frames": face_scene(root / "in/sadness/frames", seed=3),  # a folder of PNG frames
        "sadness/none": face_scene(root / "in/sadness/none.mp4", seed=4, face=False),
        "anger/short": face_scene(root / "in/anger/short.mp4", seed=5, frames=8),
    }
    (root / "in/anger/broken.mp4").write_bytes(b"this is not a video" * 10)
    result = prepare([root / "in"], root / "out", config=PrepareConfig(**FAST))
    return root, made, result


def _by_source(result):
    return {Path(e["source"]).relative_to(Path(e["source"]).parents[1]).with_suffix("").as_posix(): e
            for e in result.entries}


def test_statuses_labels_and_list(scenes):
    root, _, result = scenes
    entries = _by_source(result)
    status = {k: e["status"] for k, e in entries.items()}
    assert status == {"happiness/a": "ok", "happiness/b": "ok", "sadness/frames": "ok", "sadness/none": "no_face",
                      "anger/short": "too_short", "anger/broken": "unreadable"}
    assert result.counts == {"ok": 3, "no_face": 1, "too_short": 1, "unreadable": 1}
    assert result.classes[:2] == ("happiness", "sadness")  # guessed: dfew's order
    lines = result.list_path.read_text().splitlines()
    assert sorted(lines) == sorted(f"{entries[k]['folder']} 20 {lab}" for k, lab in
                                   (("happiness/a", 0), ("happiness/b", 0), ("sadness/frames", 1)))
    for line in lines:
        folder = Path(line.split()[0])
        frames = sorted(folder.iterdir())
        assert [f.name for f in frames] == [f"{i:05d}.jpg" for i in range(1, 21)]
    manifest = [json.loads(line) for line in result.manifest_path.read_text().splitlines()]
    assert len(manifest) == 6 and {m["status"] for m in manifest} == set(result.counts) - {""}
    assert entries["anger/broken"]["folder"] is None and "broken.mp4" in entries["anger/broken"]["detail"]
    assert not (root / "out/clips/sadness__none").exists()  # no face: never centre-cropped behind the user's back
    assert (root / "out/classes.txt").read_text().splitlines()[0] == "happiness"


def test_real_face_recall_and_centring(scenes):
    _, made, result = scenes
    entries = _by_source(result)
    for key in ("happiness/a", "happiness/b", "sadness/frames"):
        entry, truth = entries[key], made[key].boxes
        assert entry["face_share"] >= 0.9, key
        errors = [centring_error(box, t) for box, t in zip(entry["boxes"], truth)]
        assert np.mean(errors) < 0.1 and max(errors) < 0.2, (key, errors)
        assert sum(hits([box], t) for box, t in zip(entry["boxes"], truth)) == len(truth)
        sides = [b[2] for b in entry["boxes"]]
        true_sides = [np.sqrt(t[2] * t[3]) for t in truth]
        assert np.allclose(sides, true_sides, rtol=0.25)  # the crop follows the zoom


def test_second_run_skips_and_writes_the_same_list(scenes):
    root, _, first = scenes
    before = first.list_path.read_text()
    again = prepare([root / "in"], root / "out", config=PrepareConfig(**FAST))
    assert again.skipped == 6 and again.list_path.read_text() == before
    assert [e["status"] for e in again.entries] == [e["status"] for e in first.entries]


def test_interrupted_run_resumes(scenes, tmp_path):
    root, _, first = scenes
    seen = []

    def stop_after_one(record):
        seen.append(record)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare([root / "in"], tmp_path / "out", config=PrepareConfig(**FAST), on_clip=stop_after_one)
    assert not list((tmp_path / "out/clips").glob(".tmp-*")) and not (tmp_path / "out/list.txt").exists()
    done = []
    result = prepare([root / "in"], tmp_path / "out", config=PrepareConfig(**FAST), on_start=lambda n, d: done.append(d))
    assert done == [1] and result.skipped == 1
    rel = lambda text: text.replace(str(tmp_path / "out"), str(root / "out"))  # noqa: E731
    assert rel(result.list_path.read_text()) == first.list_path.read_text()


@pytest.mark.slow  # two spawned workers import torch: about 20 s on 2 busy cores
def test_parallel_workers_and_changed_settings(scenes, tmp_path):
    root, _, first = scenes
    result = prepare([root / "in/happiness", root / "in/sadness/none.mp4"], tmp_path / "out",
                     config=PrepareConfig(workers=2, **FAST))  # worker processes (spawned)
    assert result.counts["ok"] == 2 and result.counts["no_face"] == 1
    ours = {Path(e["source"]).name: e["boxes"] for e in result.entries}
    theirs = {Path(e["source"]).name: e["boxes"] for e in first.entries}
    assert all(ours[k] == theirs[k] for k in ours)  # the same crops as in one process
    redo = prepare([root / "in/happiness"], tmp_path / "out", config=PrepareConfig(size=48))
    assert redo.skipped == 0  # another crop size: the clips are cut again
    from PIL import Image
    assert {Image.open(p).size for p in (tmp_path / "out/clips").rglob("00001.jpg")} == {(48, 48)}


def test_labels_csv_fps_and_no_detector(tmp_path):
    video = face_scene(tmp_path / "raw/x.mp4", seed=7, frames=20).path
    other = face_scene(tmp_path / "raw/y.mp4", seed=8, frames=20).path
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nraw/x.mp4,fear\n")
    result = prepare([tmp_path / "raw"], tmp_path / "out", labels=labels,
                     config=PrepareConfig(detector="none", fps=10, min_frames=4, **FAST))
    entries = {Path(e["source"]).name: e for e in result.entries}
    assert entries["x.mp4"]["label"] == 6 and entries["y.mp4"]["label"] is None  # dfew: fear is 6
    assert entries["x.mp4"]["frames"] in (8, 9) and entries["x.mp4"]["face_share"] is None  # 0.8 s at 10 fps
    assert result.listed == 1 and result.unlabelled == 1
    assert result.list_path.read_text().split()[2] == "6"
    labels.write_text("path,label\nraw/x.mp4,joy\n")
    with pytest.raises(DataError, match="labels.csv:2: label 'joy' is not a class"):
        prepare([video, other], tmp_path / "out2", labels=labels, classes=("happiness", "fear"))
    labels.write_text("raw/gone.mp4,fear\n")
    with pytest.raises(DataError, match="labels.csv:1: raw/gone.mp4 does not exist"):
        prepare([video], tmp_path / "out2", labels=labels)
    labels.write_text("raw/x.mp4,7\n")
    with pytest.raises(DataError, match="label 7 is outside the class set"):
        prepare([video], tmp_path / "out2", labels=labels, classes=("happiness", "fear"))
    assert not (tmp_path / "out2").exists()  # refused before anything was written


def test_full_disk_leaves_nothing_half_written(tmp_path, monkeypatch):
    face_scene(tmp_path / "in/happiness/a.mp4", seed=1)

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(DataError, match="No space left on device"):
        prepare([tmp_path / "in"], tmp_path / "out", config=PrepareConfig(**FAST))
    assert not list((tmp_path / "out/clips").iterdir()) and not (tmp_path / "out/list.txt").exists()


def test_world_clips_already_cropped_with_no_detector(tmp_path):
    from trainer.data.synthetic import generate

    made = generate(tmp_path / "world", train_per_class=1, test_per_class=1, size=32, seed=0, min_frames=16, max_frames=18)
    result = prepare([tmp_path / "world/clips/train"], tmp_path / "out", config=PrepareConfig(detector="none", **FAST))
    listed = [line.split() for line in made.train_list.read_text().splitlines()]
    assert result.counts["ok"] == len(listed) and result.classes is None and result.listed == 0
    frames = sorted(e["frames"] for e in result.entries)
    assert frames == sorted(int(n) for _, n, _ in listed)


def test_world_clips_drawn_into_larger_scenes(tmp_path):
    """The face world's cartoon clips pasted, moving, into a larger cluttered scene (the face's centre and
    height known from the world's head pose): where the Haar cascade finds the cartoon face, the crop
    must land on it."""
    from PIL import Image

    from trainer.data.scenes import clutter
    from trainer.world.aus import sample_apex
    from trainer.world.clips import frame_pose, render_frame, sample_clip

    truth = {}
    for k, name in enumerate(("happiness", "surprise", "anger", "sadness")):
        rng = np.random.default_rng(k)
        spec = sample_clip(rng, sample_apex(rng, name), 16, 16)
        background = clutter(120, 160, rng)
        out = tmp_path / "scenes" / f"w{k}"
        out.mkdir(parents=True)
        boxes = []
        for t in range(spec.n):
            scene = background.copy()
            x, y = 20 + 3 * t, 30 + t  # the 64 px world frame moves right and down
            scene[y:y + 64, x:x + 64] = render_frame(spec, t, 64, rng)
            Image.fromarray(scene).save(out / f"{t:03d}.png")
            pose = frame_pose(spec, t)
            side = pose.scale * 64  # the face's height
            boxes.append((x + pose.cx * 64 - side / 2, y + pose.cy * 64 - side / 2, side, side))
        truth[out.name] = boxes
    result = prepare([tmp_path / "scenes"], tmp_path / "out", config=PrepareConfig(min_face=0.3, **FAST))
    ok = [e for e in result.entries if e["status"] == "ok"]
    assert len(ok) >= 2, [(e["id"], e["face_share"]) for e in result.entries]
    margin = PrepareConfig().margin
    for entry in ok:
        for (x, y, w, h), (tx, ty, tw, th) in zip(entry["boxes"], truth[Path(entry["source"]).name]):
            # The cascade's box on a cartoon sits higher than on a real face, so the real-face calibration
            # puts the crop about 0.2 face heights low (bench/RESULTS.md); the whole face must still be in it.
            assert centring_error((x, y, w, h), (tx, ty, tw, th)) < 0.35, entry["id"]
            grow = w * margin
            assert x - grow <= tx and y - grow <= ty and x + w + grow >= tx + tw and y + h + grow >= ty + th, entry["id"]


def _error_line(err):
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_bad_input_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    face_scene(tmp_path / "in/a.mp4", seed=1, frames=4)
    cases = [
        (["prepare", tmp_path / "nothere", "--out", tmp_path / "o"], "input not found"),
        (["prepare", tmp_path / "empty", "--out", tmp_path / "o"], "no videos (mp4, avi, mkv, webm, mov) or folders of frames"),
        (["prepare", tmp_path / "in", "--out", tmp_path / "o", "--size", "0"], "--size must be an integer from 16 to 4096"),
        (["prepare", tmp_path / "in", "--out", tmp_path / "file"], "is a file, not a folder"),
        (["prepare", tmp_path / "in", "--out", tmp_path / "file/sub"], "cannot write to --out"),
        (["prepare", tmp_path / "in", "--out", tmp_path / "o", "--detector", "mtcnn"], "unknown face detector"),
        (["prepare", tmp_path / "in", "--out", tmp_path / "o", "--detector", tmp_path / "file.onnx"], "YuNet model file not found"),
        (["prepare", tmp_path / "in", "--out", tmp_path / "o", "--detector", tmp_path / "bad.onnx"], "cannot load the YuNet model"),
        (["prepare", tmp_path / "in", "--out", tmp_path / "o", "--labels", tmp_path / "nope.csv"], "labels file not found"),
    ]
    for argv, message in cases:
        code, _, err = cli(capsys, *argv)
        assert code == 1 and message in _error_line(err), (argv, err)
    assert not (tmp_path / "o").exists()
    code, out, err = cli(capsys, "prepare", tmp_path / "in", "--out", tmp_path / "o")
    assert code == 0 and "too_short" in out and "0 labelled clips" in out


def test_unguarded_script_with_workers_is_refused(tmp_path):
    import subprocess
    import sys

    face_scene(tmp_path / "in/a.mp4", seed=1, frames=4)
    face_scene(tmp_path / "in/b.mp4", seed=2, frames=4)  # two clips: a pool would start
    script = tmp_path / "cut.py"
    script.write_text("from trainer.data.prepare import PrepareConfig, prepare\n"
                      f"prepare([{str(tmp_path / 'in')!r}], {str(tmp_path / 'out')!r}, config=PrepareConfig(workers=2, min_frames=1))\n")
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0 and f"{script}:2 starts prepare's worker processes" in done.stderr
