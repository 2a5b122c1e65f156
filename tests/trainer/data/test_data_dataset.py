import logging

import pytest
import torch

from trainer.data import ClipRecord, DataError, VideoClipDataset, build_loader
from trainer.data.decode import list_frames


def _values(frames):
    """Frame number encoded in each frame (pixel value / 10)."""
    return [int(round(v / 10)) for v in frames.float().mean(dim=(1, 2, 3)).tolist()]


def test_natural_frame_order_and_test_sampling(tmp_path, make_clip):
    folder = make_clip(tmp_path / "c", 20)  # 1.png .. 20.png, unpadded names
    assert [p.stem for p in list_frames(folder)][:12] == [str(k) for k in range(1, 13)]
    lexi = [p.stem for p in list_frames(folder, "lexicographic")]
    assert lexi[:3] == ["1", "10", "11"]
    ds = VideoClipDataset([ClipRecord(folder, 20, 0)], 16, train=False)
    frames, label = ds[0]
    assert frames.shape == (16, 3, 16, 16) and frames.dtype == torch.uint8 and label == 0
    tick = 20 / 16
    assert _values(frames) == [int(tick / 2 + tick * k) + 1 for k in range(16)]


def test_short_clip_repeats_last_frame(tmp_path, make_clip):
    folder = make_clip(tmp_path / "c", 5, ext="jpg")
    frames, _ = VideoClipDataset([ClipRecord(folder, 5, 1)], 16, train=True, augment="none")[0]
    assert _values(frames) == [1, 2, 3, 4, 5] + [5] * 11


def test_mismatched_counts_use_folder_and_summarise(tmp_path, make_clip):
    a, b = make_clip(tmp_path / "a", 18), make_clip(tmp_path / "b", 16)
    ds = VideoClipDataset([ClipRecord(a, 40, 0, "l.txt:1"), ClipRecord(b, 16, 1, "l.txt:2")], 16, False)
    assert ds.frame_counts == [18, 16]
    assert [(r.path, listed, found) for r, listed, found in ds.mismatches] == [(a, 40, 18)]
    assert "1 of 2 clips" in ds.mismatch_summary() and "lists 40, has 18" in ds.mismatch_summary()
    assert max(_values(ds[0][0])) <= 18  # sampled within the folder's real frames
    ds_ok = VideoClipDataset([ClipRecord(b, 16, 1)], 16, False)
    assert ds_ok.mismatch_summary() is None


def test_missing_and_empty_clips_fail_naming_them(tmp_path, make_clip):
    good = make_clip(tmp_path / "good", 3)
    (tmp_path / "empty").mkdir()
    recs = [ClipRecord(good, 3, 0, "l.txt:1"), ClipRecord(tmp_path / "gone", 3, 0, "l.txt:2"),
            ClipRecord(tmp_path / "empty", 3, 0, "l.txt:3")]
    with pytest.raises(DataError) as err:
        VideoClipDataset(recs, 16, False)
    msg = str(err.value)
    assert msg.startswith("2 of 3 clips are unusable")
    assert "gone (l.txt:2: missing)" in msg and "empty (l.txt:3: no JPEG/PNG frames)" in msg
    with pytest.raises(DataError, match="empty"):
        VideoClipDataset([], 16, False)


def test_corrupt_frame_replaced_by_nearest(tmp_path, make_clip, caplog):
    folder = make_clip(tmp_path / "c", 16, ext="jpg", width=3)
    (folder / "008.jpg").write_bytes(b"not a jpeg at all")
    whole = (folder / "012.jpg").read_bytes()
    (folder / "012.jpg").write_bytes(whole[: len(whole) // 2])  # truncated
    ds = VideoClipDataset([ClipRecord(folder, 16, 0)], 16, train=False)
    with caplog.at_level(logging.WARNING):
        frames, _ = ds[0]
    values = _values(frames)
    assert values[7] in (7, 9) and values[11] in (11, 13) and ds.stats.replaced_frames == 2
    assert "008.jpg" in caplog.text and "012.jpg" in caplog.text


def test_clip_without_readable_frames_fails(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    for k in range(3):
        (folder / f"{k}.jpg").write_bytes(b"garbage")
    ds = VideoClipDataset([ClipRecord(folder, 3, 0)], 16, train=False)
    with pytest.raises(DataError, match="has no readable frame"):
        ds[0]
    loader = build_loader(ds, 1, shuffle=False, drop_last=False, workers=1)
    with pytest.raises(DataError) as err:  # raised in a worker: still one line
        next(iter(loader))
    assert str(err.value).startswith(f"clip {folder} has no readable frame")
    assert "\n" not in str(err.value)


def _dataset(tmp_path, make_clip, n=6):
    recs = [ClipRecord(make_clip(tmp_path / f"c{i}", 20 + i, size=(24, 30)), None, i % 3)
            for i in range(n)]
    return VideoClipDataset(recs, 16, train=True, augment="dfew", seed=7)


def test_augmentation_is_a_function_of_seed_epoch_index(tmp_path, make_clip):
    ds = _dataset(tmp_path, make_clip)
    a = ds[2][0]
    ds.set_epoch(1)
    b = ds[2][0]
    assert torch.equal(ds[(2, 0)][0], a) and torch.equal(ds[(2, 1)][0], b)
    assert not torch.equal(a, b)
    ds.set_epoch(0)
    assert torch.equal(ds[2][0], a)


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_replays_epochs_and_resumes_mid_epoch(tmp_path, make_clip, workers):
    ds = _dataset(tmp_path, make_clip)
    loader = build_loader(ds, batch_size=2, shuffle=True, drop_last=False, workers=workers, seed=3)

    def run(epoch, start=0):
        ds.set_epoch(epoch, start)
        return [(x.clone(), y.clone()) for x, y in loader]

    e0, e1, e0_again = run(0), run(1), run(0)
    assert e0[0][0].shape == (2, 16, 3, 16, 16) and e0[0][0].dtype == torch.uint8
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(e0, e0_again))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(e0, e1))
    resumed = run(0, start=2)
    assert len(resumed) == 2 and torch.equal(resumed[0][0], e0[1][0])


def test_loader_drop_last_and_order(tmp_path, make_clip):
    ds = _dataset(tmp_path, make_clip, n=5)
    assert len(build_loader(ds, 2, shuffle=False, drop_last=True, workers=0)) == 2
    labels = torch.cat([y for _, y in build_loader(ds, 2, shuffle=False, drop_last=False, workers=0)])
    assert labels.tolist() == ds.labels
    with pytest.raises(DataError, match="batch_size"):
        build_loader(ds, 0, False, False, 0)


def test_bad_dataset_arguments(tmp_path, make_clip):
    rec = [ClipRecord(make_clip(tmp_path / "c", 3), 3, 0)]
    with pytest.raises(DataError, match="image_size"):
        VideoClipDataset(rec, 4, False)
    with pytest.raises(DataError, match="frame_order"):
        VideoClipDataset(rec, 16, False, frame_order="random")
    with pytest.raises(DataError, match="unknown augmentation preset"):
        VideoClipDataset(rec, 16, True, augment="imagenet")
