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


def test_full_disk_leaves_no_partial_set_and_a_later_run_rebuilds(tmp_path, monkeypatch):
    import errno

    import trainer.data.synthetic as synthetic

    real = synthetic._write_clip
    calls = {"n": 0}

    def fill_up(job):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(job)

    monkeypatch.setattr(synthetic, "_write_clip", fill_up)
    kwargs = dict(train_per_class=1, test_per_class=1, size=32, min_frames=4, max_frames=6)
    with pytest.raises(DataError, match="no space left on the device.*nothing of it was kept"):
        generate(tmp_path, **kwargs)
    assert not (tmp_path / "clips").exists() and not list(tmp_path.glob("*.txt"))
    assert not (tmp_path / "synthetic.json").exists()
    monkeypatch.setattr(synthetic, "_write_clip", real)
    made = generate(tmp_path, **kwargs)
    assert len(made.train_list.read_text().splitlines()) == 7


def test_an_unfinished_set_is_never_reused(tmp_path):
    kwargs = dict(train_per_class=1, test_per_class=1, size=32, min_frames=4, max_frames=6)
    made = generate(tmp_path, **kwargs)
    (made.root / "synthetic.json").unlink()  # as if the run was killed before the manifest
    stale = made.root / "clips" / "train" / "99999"
    stale.mkdir()
    generate(tmp_path, **kwargs)
    assert not stale.exists() and (made.root / "synthetic.json").is_file()


def test_clip_folders_are_numbered_and_name_no_class(tmp_path):
    made = generate(tmp_path, train_per_class=1, test_per_class=1, size=32, min_frames=4, max_frames=6)
    names = [line.split()[0].rsplit("/", 1)[-1] for line in made.train_list.read_text().splitlines()]
    assert all(n.isdigit() for n in names) and not any(c in made.train_list.read_text() for c in CLASSES)


def _someones_dataset(root):
    clip = root / "clips" / "00001"
    clip.mkdir(parents=True)
    (clip / "00001.jpg").write_bytes(b"a frame")
    (root / "train.txt").write_text(f"{clip} 1 3\n")
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_synthetic_refuses_a_folder_it_did_not_make_and_leaves_it_as_it_was(tmp_path):
    before = _someones_dataset(tmp_path)
    with pytest.raises(DataError, match="not empty and holds no synthetic set; nothing was changed"):
        generate(tmp_path, train_per_class=1, test_per_class=1, size=32, min_frames=4, max_frames=6)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_trainer_synth_and_run_refuse_an_existing_dataset_folder(tmp_path, capsys):
    from cli_runner import trainer_cli

    before = _someones_dataset(tmp_path)
    code, _, err = trainer_cli(capsys, "synth", "--out", tmp_path, "--train-per-class", 1, "--test-per-class", 1)
    assert code != 0 and "holds no synthetic set" in err and "Traceback" not in err
    code, _, err = trainer_cli(capsys, "run", "--out", tmp_path / "run", "--set", f"data.synth_dir={tmp_path}")
    assert code != 0 and "holds no synthetic set" in err and "Traceback" not in err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "run" not in p.parts} == before


def test_an_interrupted_set_is_still_ours_to_rebuild(tmp_path):
    kwargs = dict(train_per_class=1, test_per_class=1, size=32, min_frames=4, max_frames=6)
    made = generate(tmp_path, **kwargs)
    (made.root / "synthetic.json").unlink()  # as an interrupted rebuild leaves it
    again = generate(tmp_path, **kwargs)
    assert len(again.train_list.read_text().splitlines()) == 7
