"""`trainer doctor`: every check against a real folder tree, the JSON keys, exit codes, --fix, and the
datasets' own annotation formats with --data-root remapping."""

from __future__ import annotations

import json

import pytest
from cli_runner import trainer_cli as cli

from trainer.data.doctor import CATEGORIES, diagnose, write_fixed
from trainer.errors import DataError

KEYS = {"clips", "missing", "frame_count_mismatch", "unreadable_frames", "short", "duplicates", "bad_labels", "overlap", "labels"}


@pytest.fixture
def tree(tmp_path, make_clip):
    root = tmp_path / "data"
    for name, n in (("c1", 20), ("c2", 20), ("c3", 20), ("short", 5), ("t1", 18)):
        make_clip(root / name, n, ext="jpg", width=5)
    (root / "c3/00007.jpg").write_bytes(b"")  # an empty frame
    lines = [f"{root}/c1 20 0", f"{root}/c2 25 1", f"{root}/c3 20 2", f"{root}/gone 30 1", f"{root}/short 5 0",
             f"{root}/c1 20 0", f"{root}/t1 18 9", "# a comment", f"{root}/c2 20 4"]
    listed = tmp_path / "train.txt"
    listed.write_text("\n".join(lines) + "\n")
    test = tmp_path / "test.txt"
    test.write_text(f"{root}/c2 20 1\n{root}/t1 18 2\n")
    return root, listed, test


def test_every_check(tree):
    root, listed, test = tree
    diag = diagnose(listed, test_list=test, classes=("a", "b", "c", "d", "e", "f", "g"))
    lines = {k: [f.line for f in diag.findings[k]] for k in CATEGORIES}
    assert lines["missing"] == ["train.txt:4"]
    assert lines["frame_count_mismatch"] == ["train.txt:2"]
    assert lines["unreadable_frames"] == ["train.txt:3"]
    assert lines["short"] == ["train.txt:5"]
    assert lines["duplicates"] == ["train.txt:6", "train.txt:9"]
    assert lines["bad_labels"] == ["train.txt:7"] and "label 9" in diag.findings["bad_labels"][0].detail
    assert lines["overlap"] == ["train.txt:2"]  # t1's line has a bad label, so it is not a record
    assert diag.labels == {"a": 3, "b": 2, "c": 1, "e": 1} and diag.fatal  # every listed line
    assert diag.findings["duplicates"][1].detail == "same clip as train.txt:2, with another label (4, there 1)"


def test_json_keys_and_exit_codes(tree, capsys):
    root, listed, test = tree
    code, out, err = cli(capsys, "doctor", listed, "--test-list", test, "--classes", "dfew", "--json")
    report = json.loads(out)
    assert code == 1 and KEYS <= set(report) and report["clips"] == 8
    assert all(set(item) == {"line", "clip", "detail"} for k in CATEGORIES for item in report[k])
    assert "missing 1" in err and "overlap 1" in err
    good = listed.parent / "good.txt"
    good.write_text(f"{root}/c1 20 0\n{root}/short 5 1\n")
    code, out, _ = cli(capsys, "doctor", good, "--classes", "dfew")
    assert code == 0 and "usable (warnings above)" in out and "short" in out
    code, _, err = cli(capsys, "doctor", listed.parent / "nope.txt")
    assert code == 1 and err.startswith("error: annotation file not found")


def test_fix_writes_a_corrected_copy(tree, capsys):
    root, listed, _ = tree
    original = listed.read_text()
    fixed = listed.parent / "fixed.txt"
    code, out, _ = cli(capsys, "doctor", listed, "--fix", fixed)
    assert code == 1 and "2 missing" not in out and "1 missing and 2 repeated dropped, 1 frame counts set" in " ".join(out.split())
    assert listed.read_text() == original
    assert fixed.read_text().splitlines() == [f"{root}/c1 20 0", f"{root}/c2 20 1", f"{root}/c3 20 2", f"{root}/short 5 0",
                                              f"{root}/t1 18 9", "# a comment"]
    diag = diagnose(fixed)
    assert not diag.findings["missing"] and not diag.findings["duplicates"] and not diag.findings["frame_count_mismatch"]
    with pytest.raises(DataError, match="would overwrite the list being checked"):
        write_fixed(diagnose(listed), listed)


def test_deep_finds_frames_that_do_not_decode(tmp_path, make_clip):
    clip = make_clip(tmp_path / "c", 16, ext="jpg", width=5)
    data = (clip / "00003.jpg").read_bytes()
    (clip / "00003.jpg").write_bytes(data[: len(data) // 3])  # truncated, not empty
    listed = tmp_path / "l.txt"
    listed.write_text(f"{clip} 16 0\n")
    assert not diagnose(listed).findings["unreadable_frames"]  # only listing by default
    found = diagnose(listed, deep=True).findings["unreadable_frames"]
    assert len(found) == 1 and "00003.jpg" in found[0].detail


def test_authors_lists_and_dfew_csv_with_data_root(tmp_path, make_clip):
    root = tmp_path / "DFEW"
    for i, n in enumerate((16, 18, 20), 1):
        make_clip(root / "Clip/clip_224x224" / f"{i:05d}", n, ext="jpg", width=5)
    # the authors' list: their machine's absolute paths and frame counts that are off by one (the MAFW issue)
    authors = tmp_path / "DFEW_set_1_train.txt"
    authors.write_text("".join(f"/home/them/datasets/DFEW/Clip/clip_224x224/{i:05d} {n + 1} {i}\n"
                               for i, n in enumerate((16, 18, 20), 1)))
    diag = diagnose(authors, data_root=root, classes=("happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear"))
    assert not diag.findings["missing"] and len(diag.findings["frame_count_mismatch"]) == 3
    assert diag.labels == {"sadness": 1, "neutral": 1, "anger": 1}
    fixed = tmp_path / "fixed.txt"
    summary = write_fixed(diag, fixed)
    assert summary.counts_set == 3 and summary.paths_rewritten == 3
    assert fixed.read_text().splitlines()[0] == f"{root}/Clip/clip_224x224/00001 16 1"
    assert not diagnose(fixed).findings["frame_count_mismatch"]
    split = root / "EmoLabel_DataSplit/train(single-labeled)/set_1.csv"
    split.parent.mkdir(parents=True)
    split.write_text("video_name,label\n1,1\n2,7\n4,3\n2,7\n")
    diag = diagnose(split, data_root=root, classes=("happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear"))
    assert [f.line for f in diag.findings["missing"]] == ["set_1.csv:4"]
    assert [f.line for f in diag.findings["duplicates"]] == ["set_1.csv:5"]
    assert diag.labels == {"happiness": 1, "neutral": 1, "fear": 2}
    write_fixed(diag, tmp_path / "fixed.csv")
    assert (tmp_path / "fixed.csv").read_text() == "video_name,label\n1,1\n2,7\n"
