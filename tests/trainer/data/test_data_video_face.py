import numpy as np
import pytest
import torch

from trainer.data import ClipRecord, DataError, VideoClipDataset
from trainer.data.decode import LoadStats, count_video_frames, load_video
from trainer.data.faces import HaarDetector, clip_box, crop_faces
from trainer.data.sampling import segment_indices


def write_video(path, n, size=(32, 48)):
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        for k in range(1, n + 1):
            img = np.full((size[0], size[1], 3), 10 * k, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_video_file_sampling(tmp_path):
    video = write_video(tmp_path / "clip.mp4", 20)
    assert count_video_frames(video) == 20
    ds = VideoClipDataset([ClipRecord(video, None, 2)], 24, train=False)
    frames, label = ds[0]
    assert frames.shape == (16, 3, 24, 24) and frames.dtype == torch.uint8 and label == 2
    values = [round(v / 10) for v in frames.float().mean(dim=(1, 2, 3)).tolist()]
    assert values == [int(k) + 1 for k in segment_indices(20, 16)]


def test_short_video_and_broken_video(tmp_path):
    video = write_video(tmp_path / "short.avi", 4)
    clip = load_video(video, lambda n: segment_indices(n, 16), LoadStats())
    assert clip.shape == (16, 32, 48, 3)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 100)
    ds = VideoClipDataset([ClipRecord(broken, None, 0)], 24, train=False)
    with pytest.raises(DataError, match="broken.mp4"):
        ds[0]


def test_clip_box_square_inside_image():
    top, left, side = clip_box([(10, 10, 20, 20), (12, 10, 22, 22), (90, 90, 5, 5)], 60, 80, 0.25)
    assert side == 33 and 0 <= top <= 60 - side and 0 <= left <= 80 - side
    top, left, side = clip_box([(70, 40, 30, 30)], 60, 80, 0.5)  # clamped to the bottom-right
    assert (top + side, left + side) == (60, 80) and side == 60


class _FakeDetector:
    def __init__(self, box):
        self.box = box

    def best_face(self, frame):
        return self.box


def test_crop_faces_uses_one_box_for_the_clip():
    clip = (np.arange(2 * 40 * 50 * 3) % 251).astype(np.uint8).reshape(2, 40, 50, 3)
    out, found = crop_faces(clip, _FakeDetector((20, 10, 10, 10)), margin=0.5)
    assert found and len(out) == 2 and out[1].shape == (20, 20, 3)
    assert np.array_equal(np.stack(out), clip[:, 5:25, 15:35])
    same, found = crop_faces(clip, _FakeDetector(None))
    assert not found and np.array_equal(np.stack(same), clip)


def test_haar_detector_runs_offline_and_counts_misses(tmp_path, make_clip, caplog):
    cv2 = pytest.importorskip("cv2")
    detector = HaarDetector()
    if not hasattr(cv2, "CascadeClassifier"):  # OpenCV 5: a clear error instead of a crash
        with pytest.raises(DataError, match="opencv-python-headless>=4.8,<5"):
            detector.best_face(np.zeros((64, 64, 3), dtype=np.uint8))
        return
    assert detector.best_face(np.full((64, 64, 3), 128, dtype=np.uint8)) is None
    folder = make_clip(tmp_path / "c", 4, size=(64, 64))
    ds = VideoClipDataset([ClipRecord(folder, 4, 0)], 32, train=False, face_crop=True)
    frames, _ = ds[0]
    assert frames.shape == (16, 3, 32, 32) and ds.stats.no_face == 1
    assert "(1 clip so far)" in caplog.text
