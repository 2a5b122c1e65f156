import hashlib

import pytest

from trainer.data import VideoClipDataset, read_annotations
from trainer.data.errors import DataError
from trainer.data.synthetic import CLASSES, generate


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != "synthetic.json":
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes().replace(str(root).encode(), b"ROOT"))
    return h.hexdigest()


def test_synthetic_set_is_a_list_file_set_and_deterministic(tmp_path):
    kwargs = dict(train_per_class=2, test_per_class=1, size=32, min_frames=6, max_frames=20, seed=4)
    a = generate(tmp_path / "a", **kwargs)
    assert a.classes == CLASSES and len(CLASSES) == 7
    lines = a.train_list.read_text().splitlines()
    assert len(lines) == 14 and len(a.test_list.read_text().splitlines()) == 7
    recs = read_annotations(a.train_list, num_classes=7)
    assert sorted({r.label for r in recs}) == list(range(7))
    assert all(r.path.is_absolute() and 6 <= r.num_frames <= 20 for r in recs)
    ds = VideoClipDataset(recs, 32, train=True, augment="light")
    assert ds.mismatches == [] and ds[0][0].shape == (16, 3, 32, 32)
    b = generate(tmp_path / "b", **kwargs)
    assert _digest(a.root) == _digest(b.root)
    c = generate(tmp_path / "c", **{**kwargs, "seed": 5})
    assert _digest(a.root) != _digest(c.root)


def test_synthetic_reuses_identical_set_and_rebuilds_other(tmp_path):
    kwargs = dict(train_per_class=1, test_per_class=1, size=32, min_frames=4, max_frames=6)
    first = generate(tmp_path, **kwargs)
    stamp = first.train_list.stat().st_mtime_ns
    assert generate(tmp_path, **kwargs).train_list.stat().st_mtime_ns == stamp
    generate(tmp_path, **{**kwargs, "train_per_class": 2})
    assert len(first.train_list.read_text().splitlines()) == 14


def test_synthetic_bad_parameters(tmp_path):
    with pytest.raises(DataError, match="min_frames"):
        generate(tmp_path, min_frames=10, max_frames=5)
    with pytest.raises(DataError, match="size"):
        generate(tmp_path, size=8)
