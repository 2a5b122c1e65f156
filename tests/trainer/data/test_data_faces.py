"""Face detection and tracking on a real photograph (scikit-image's astronaut) and on made-up boxes."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.data.faces import CallableDetector, Face, HaarDetector, crop_faces, make_detector
from trainer.data.scenes import ASTRONAUT_FACE, astronaut, centring_error
from trainer.data.track import crop_square, follow_face, link_tracks
from trainer.errors import DataError

pytest.importorskip("skimage")


def test_haar_picks_the_face_not_the_largest_box_on_the_astronaut():
    # the suit patch is the largest box at 320 px; a face crop by "largest box" cut the suit
    photo = astronaut()
    faces = HaarDetector().detect(photo)
    assert len(faces) >= 2 and max(faces, key=lambda f: f.w).score < max(f.score for f in faces)
    x, y, w, h = HaarDetector().best_face(photo)
    assert centring_error((x, y, w, h), ASTRONAUT_FACE) < 0.15
    crops, found = crop_faces([photo, photo], HaarDetector(), margin=0.15)  # predict --face-crop's path
    assert found
    offset = crops[0].ctypes.data - photo.ctypes.data  # crops are views: where the crop starts
    top, left, side = offset // photo.strides[0], (offset % photo.strides[0]) // photo.strides[1], crops[0].shape[0]
    assert centring_error((left, top, side, side), ASTRONAUT_FACE) < 0.15
    assert side < 2 * ASTRONAUT_FACE[3]  # a face crop, not most of the photograph


def test_make_detector_specs(tmp_path):
    assert make_detector("none") is None and make_detector(None) is None
    assert isinstance(make_detector("haar"), HaarDetector) and make_detector("haar:640").max_side == 640
    with pytest.raises(DataError, match="haar:SIDE takes the search size"):
        make_detector("haar:big")
    with pytest.raises(DataError, match="YuNet model file not found"):
        make_detector(f"yunet:{tmp_path / 'missing.onnx'}")
    with pytest.raises(DataError, match="unknown face detector 'retina'"):
        make_detector("retina")
    with pytest.raises(DataError, match="cannot import the face detector"):
        make_detector("no_such_module_xyz:detect")
    detector = make_detector(lambda frame: [(1, 2, 3, 4, 0.5)])
    assert detector.detect(np.zeros((8, 8, 3), np.uint8)) == [Face(1, 2, 3, 4, 0.5)]
    bad = CallableDetector(lambda frame: [(1, 2)])
    with pytest.raises(DataError, match=r"must return \(x, y, w, h"):
        bad.detect(np.zeros((8, 8, 3), np.uint8))

    def broken(frame):
        raise RuntimeError("model not loaded")

    with pytest.raises(DataError, match="face detector 'broken' failed: RuntimeError: model not loaded"):
        make_detector(broken).detect(np.zeros((8, 8, 3), np.uint8))


def test_corrupt_yunet_model_is_one_error(tmp_path):
    model = tmp_path / "yunet.onnx"
    model.write_bytes(b"not a model")
    with pytest.raises(DataError, match="cannot load the YuNet model"):
        make_detector(str(model)).detect(np.zeros((32, 32, 3), np.uint8))


def _faces(t):
    return [Face(20 + 2 * t, 30, 40, 40, 30.0)]


def test_track_follows_the_confident_face_and_bridges_misses():
    dets = [_faces(t) for t in range(30)]
    for t in (5, 6, 7, 20):  # misses
        dets[t] = []
    for t in (0, 1):  # a larger, weak detection in the clutter at the start
        dets[t] = dets[t] + [Face(100, 100, 80, 80, 3.0)]
    track = follow_face(dets)
    centres = track.boxes[:, 0] + track.boxes[:, 2] / 2  # (T,)
    assert np.allclose(centres, 40 + 2 * np.arange(30), atol=1.0)  # the moving face everywhere, gaps bridged
    assert track.share == pytest.approx(26 / 30)


def test_track_smooths_jitter_and_drops_an_outlier():
    rng = np.random.default_rng(0)
    dets = [[Face(50 + rng.normal(0, 3), 50 + rng.normal(0, 3), 40, 40, 20.0)] for _ in range(40)]
    dets[10] = [Face(90, 50, 40, 40, 20.0)]  # a one-frame jump
    track = follow_face(dets)
    raw = np.array([d[0].x for d in dets])
    assert np.std(np.diff(track.boxes[:, 0])) < 0.3 * np.std(np.diff(raw))
    assert abs(track.boxes[10, 0] - 50) < 4


def test_skipped_frames_do_not_count_against_the_face():
    dets = [_faces(t) if t % 3 == 0 else None for t in range(12)]
    track = follow_face(dets)
    assert track.share == 1.0 and track.detected.sum() == 4
    assert follow_face([None, [], None]) is None
    assert len(link_tracks([[Face(0, 0, 10, 10)], [Face(100, 100, 10, 10)]], max_gap=5)) == 2


def test_crop_square_pads_outside_the_frame_and_centres():
    frame = np.full((40, 60, 3), 200, np.uint8)
    crop = crop_square(frame, (-10, -10, 20, 20), margin=0.0, size=20)  # half outside, top-left
    assert crop.shape == (20, 20, 3)
    assert crop[:8, :8].max() == 0 and crop[12:, 12:].min() == 200
    centre = crop_square(frame, None, margin=0.0, size=16)
    assert centre.shape == (16, 16, 3) and centre.min() == 200


def test_the_default_haar_finds_small_faces_in_a_wide_frame(tmp_path):
    pytest.importorskip("skimage")
    from PIL import Image

    from trainer.data.scenes import face_scene, hits

    scene = face_scene(tmp_path / "wide", size=(640, 360), frames=4, seed=3, face_height=(0.11, 0.12))
    frames = sorted(scene.path.glob("*.png"))
    detector = make_detector("haar")
    found = [hits([(f.x, f.y, f.w, f.h) for f in detector.detect(np.asarray(Image.open(p).convert("RGB")))], truth)
             for p, truth in zip(frames, scene.boxes)]
    assert sum(found) >= 3, found


def test_predict_face_crop_frames_faces_as_prepare_does(tmp_path):
    from trainer.data import VideoClipDataset
    from trainer.data.annotations import ClipRecord
    from trainer.data.prepare import PrepareConfig

    folder = tmp_path / "clip"
    folder.mkdir()
    from PIL import Image

    for i in range(1, 3):
        Image.fromarray(astronaut()).save(folder / f"{i:05d}.jpg")
    ds = VideoClipDataset([ClipRecord(folder, 2, 0)], 64, train=False, face_crop=True)
    assert ds.face_margin == PrepareConfig().margin  # the crops a model is trained on (prepare) and predicts on
