"""Fault injection for trainer inputs: silent wrong data must refuse (one line) or do the right thing
and say so; full disks and wrong paths give one line naming the real problem."""

from __future__ import annotations

import errno
import json
import logging
import shutil

import pytest
import torch
from cli_runner import trainer_cli as cli

from promptkit.store import Store

from trainer.cli import main
from trainer.config import resolve_config
from trainer.data.annotations import read_annotations
from trainer.errors import DataError, InputError
from trainer.inputs import build_texts, check_overlap, resolve_class_set
from trainer.options import cli_options, config_from_options


def base_args(clips, out, epochs=1):
    train, test = clips
    return ["run", "--train-list", train, "--test-list", test, "--epochs", epochs, "--batch", 7, "--frames", 4,
            "--workers", 0, "--device", "cpu", "--quiet", "--out", out]


def _error_line(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


# ---------------------------------------------------------------- wrong --data-root
def _numbered_root(root, counts):
    for i, n in enumerate(counts, 1):
        folder = root / f"{i:05d}"
        folder.mkdir(parents=True)
        for j in range(n):
            (folder / f"{j:03d}.jpg").write_bytes(b"x")
    return root


def test_data_root_matched_by_numbered_name_with_wrong_frame_counts_is_refused(tmp_path):
    root = _numbered_root(tmp_path / "mafw_frames", [5, 5, 5, 5])
    lst = tmp_path / "dfew.txt"
    lst.write_text("".join(f"/data/DFEW/Clip/clip_224x224/{i:05d} 16 0\n" for i in range(1, 5)))
    with pytest.raises(DataError) as info:
        read_annotations(lst, data_root=root)
    message = str(info.value)
    assert "folder name alone" in message and "4 of 4 listed frame counts disagree" in message
    assert "clip_224x224/00001" in message and "--data-root" in message


def test_data_root_matched_by_numbered_name_without_counts_is_ambiguous(tmp_path):
    root = _numbered_root(tmp_path / "other", [5, 5])
    lst = tmp_path / "l.csv"
    lst.write_text("path,label\n/data/DFEW/clip/00001,0\n/data/DFEW/clip/00002,1\n")
    with pytest.raises(DataError, match="ambiguous"):
        read_annotations(lst, data_root=root)


def test_name_only_match_with_agreeing_counts_is_accepted_and_said(tmp_path, caplog):
    root = _numbered_root(tmp_path / "frames", [5, 7])
    lst = tmp_path / "l.txt"
    lst.write_text("/data/x/00001 5 0\n/data/x/00002 7 1\n")
    with caplog.at_level(logging.WARNING):
        recs = read_annotations(lst, data_root=root)
    assert [r.path for r in recs] == [root / "00001", root / "00002"]
    assert "folder name alone" in caplog.text and "2 of 2 listed frame counts agree" in caplog.text


def test_longer_suffix_match_is_silent_and_right(tmp_path):
    root = tmp_path / "DFEW"
    _numbered_root(root / "clip_224x224", [3])
    lst = tmp_path / "l.txt"
    lst.write_text("/data/lab/DFEW/clip_224x224/00001 16 0\n")  # counts may differ: the path is specific
    assert read_annotations(lst, data_root=root)[0].path == root / "clip_224x224" / "00001"


# ---------------------------------------------------------------- reordered / wrong class texts
def _config(tmp_path, classes, descriptions="dfew/v1", sets=()):
    options = {"data": {"classes": classes}, "text": {"descriptions": descriptions, "source": "descriptions",
                                                       "store": str(tmp_path / "store")}}
    return resolve_config("default", None, options, list(sets))


def test_classes_in_another_order_are_mapped_by_name(tmp_path):
    order = ("neutral", "happiness", "sadness", "anger", "surprise", "disgust", "fear")
    config = _config(tmp_path, ",".join(order))
    texts, info = build_texts(config, resolve_class_set(config))
    shipped = {e.name: e.description for e in Store(tmp_path / "store").load("dfew/v1").classes}
    assert texts.classes == order
    assert list(texts.texts) == [shipped[name] for name in order]
    assert info.get("reordered_by_name") is True


def test_classes_with_other_names_are_refused(tmp_path):
    config = _config(tmp_path, "joy,sorrow,calm,rage,shock,revulsion,dread")
    with pytest.raises(InputError, match="every label needs the text of its own class"):
        build_texts(config, resolve_class_set(config))


def test_default_descriptions_follow_the_class_set(tmp_path, clips):
    train, test = clips
    store = str(tmp_path / "store")
    options = cli_options(train_list=str(train), test_list=str(test), classes="mafw", store=store)
    config = config_from_options(None, None, options)
    texts, info = build_texts(config, resolve_class_set(config))
    assert info["set_id"] == "mafw/v1" and len(texts.classes) == 11
    # an explicit --descriptions is kept as given
    options = cli_options(train_list=str(train), test_list=str(test), classes="mafw", descriptions="dfew/v1",
                          store=store)
    assert config_from_options(None, None, options).text.descriptions == "dfew/v1"


def test_custom_classes_without_a_set_name_what_to_pass(tmp_path, clips):
    train, test = clips
    options = cli_options(train_list=str(train), test_list=str(test), classes="a,b,c", store=str(tmp_path / "store"))
    config = config_from_options(None, None, options)
    with pytest.raises(InputError, match="--text classnames"):
        build_texts(config, resolve_class_set(config))


# ---------------------------------------------------------------- overlapping lists
def test_overlapping_lists_are_refused_unless_allowed(clips, tmp_path, capsys, caplog):
    train, test = clips
    both = tmp_path / "test_with_train.txt"
    train_lines = train.read_text().splitlines()
    both.write_text(test.read_text() + "\n".join(train_lines[:4]) + "\n")
    args = base_args((train, both), tmp_path / "r1")
    code, _, err = cli(capsys, *args)
    line = _error_line(err)
    assert code == 1 and "4 clip(s) are in both the train and the test list" in line and "--allow-overlap" in line
    records = read_annotations(train)
    assert check_overlap(records, records[:2], allow=True) == 2


# ---------------------------------------------------------------- resume, unreadable test clips
def test_resume_without_last_pt_says_it_starts_over(clips, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = cli(capsys, *base_args(clips, out))
    assert code == 0, err
    (out / "last.pt").unlink()
    (out / "summary.json").unlink()
    code, _, err = cli(capsys, "run", "--resume", "--out", out, "--quiet")
    assert code == 0, err
    assert "has no last.pt" in err and "first epoch" in err


def test_unreadable_test_clip_fails_before_training(clips, tmp_path, capsys):
    train, test = clips
    copy = tmp_path / "clips"
    shutil.copytree(train.parent, copy)
    first = test.read_text().splitlines()[0].rsplit(maxsplit=2)[0]
    folder = (copy / first) if not first.startswith("/") else copy / first.split(str(train.parent) + "/", 1)[-1]
    for frame in folder.iterdir():
        frame.write_bytes(b"not an image")
    lists = (copy / train.name, copy / test.name)
    for lst in lists:
        lst.write_text(lst.read_text().replace(str(train.parent), str(copy)))
    code, _, err = cli(capsys, *base_args(lists, tmp_path / "r"))
    line = _error_line(err)
    assert code == 1 and "test clips cannot be read" in line and folder.name in line
    assert "epoch" not in err.split("error:")[0].lower()


# ---------------------------------------------------------------- full disk, wrong paths, eval / predict
def test_full_disk_while_saving_a_checkpoint_is_one_line(clips, tmp_path, capsys, monkeypatch):
    """The file system accepts a few bytes, then refuses with ENOSPC; torch wraps that OSError in a
    RuntimeError, which must still end as one 'no space left' line with no temp file left over."""
    real_save = torch.save

    class FillsUp:
        def __init__(self, handle):
            self.handle, self.written = handle, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 4096:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.handle.write(data)

        def flush(self):
            self.handle.flush()

    monkeypatch.setattr(torch, "save", lambda obj, handle, *a, **k: real_save(obj, FillsUp(handle), *a, **k))
    out = tmp_path / "r"
    code, _, err = cli(capsys, *base_args(clips, out))
    line = _error_line(err)
    assert code == 1 and "no space left" in line and "last.pt" in line
    assert not list(out.glob(".*.tmp")) if out.exists() else True


def test_output_under_a_regular_file_names_the_file(clips, tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    code, _, err = cli(capsys, *base_args(clips, tmp_path / "afile" / "sub" / "run"))
    line = _error_line(err)
    assert code == 1 and "afile is a file, not a folder" in line and "File exists" not in line


@pytest.fixture(scope="module")
def finished_run(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "r"
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in base_args(clips, out)])
    assert info.value.code == 0
    return out


def test_eval_accepts_a_run_folder(finished_run, clips, capsys, tmp_path):
    out = tmp_path / "eval.json"
    code, _, err = cli(capsys, "eval", finished_run, "--test-list", clips[1], "--workers", 0, "--device", "cpu",
                       "--out", out)
    assert code == 0, err
    assert json.loads(out.read_text())["checkpoint"].endswith("best.pt")
    empty = tmp_path / "empty_run"
    empty.mkdir()
    code, _, err = cli(capsys, "eval", empty, "--test-list", clips[1])
    line = _error_line(err)
    assert code == 1 and "no best.pt or last.pt" in line and "does not exist" not in line


def test_predict_hint_names_clips_not_lists(finished_run, capsys, tmp_path):
    code, _, err = cli(capsys, "predict", finished_run, tmp_path / "no_such_clip", "--device", "cpu")
    line = _error_line(err)
    assert code == 1 and "no_such_clip" in line
    assert "list file" not in line and "--data-root" not in line


def test_decoder_internals_never_end_a_message(tmp_path, monkeypatch):
    from trainer.data import decode

    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(b"\xff\xd8 broken")

    def broken(path, draft=None):
        raise IndexError("pop from empty list")  # what a decoder raised on one damaged file

    monkeypatch.setattr(decode, "read_image", broken)
    message = decode.first_readable(decode.list_frames(folder))
    assert "clip" in message and "pop from empty list" not in message and "damaged" in message
    assert decode.reason(OSError(28, "No space left on device")) == "No space left on device"
