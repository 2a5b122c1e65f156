from pathlib import Path

import pytest

from trainer.data.annotations import ClipRecord, PathRemapper, read_annotations, standard_split
from trainer.data.errors import DataError


def test_list_file_three_and_two_fields(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("# comment\n/abs/clip one 12 3\n\nrel/clip2 5\n")
    recs = read_annotations(lst)
    assert recs[0] == ClipRecord(Path("/abs/clip one"), 12, 3, "list.txt:2")
    assert recs[1].num_frames is None and recs[1].label == 5
    assert recs[1].path == tmp_path / "rel/clip2"  # relative to the list file's folder


def test_label_out_of_range_names_line(tmp_path):
    lst = tmp_path / "train.txt"
    lst.write_text("/a 10 0\n/b 10 7\n")
    with pytest.raises(DataError, match=r"train\.txt:2: label 7 is out of range \(expected 0\.\.6\)"):
        read_annotations(lst, num_classes=7)
    lst.write_text("/a 10 -1\n")
    with pytest.raises(DataError, match="train.txt:1"):
        read_annotations(lst)


def test_bad_lines_and_files(tmp_path):
    lst = tmp_path / "l.txt"
    lst.write_text("justapath\n")
    with pytest.raises(DataError, match="l.txt:1"):
        read_annotations(lst)
    lst.write_text("/a 10 happy\n")
    with pytest.raises(DataError, match="not an integer"):
        read_annotations(lst)
    lst.write_text("\n# nothing\n")
    with pytest.raises(DataError, match="no clips"):
        read_annotations(lst)
    with pytest.raises(DataError, match="not found"):
        read_annotations(tmp_path / "missing.txt")


def test_a_binary_file_is_one_data_error(tmp_path):
    for name in ("clip.mp4", "split.csv"):  # e.g. a video passed as --test-list
        (tmp_path / name).write_bytes(b"\x00\x00\x00\x18ftypmp42\xff\xfe\x80")
        with pytest.raises(DataError, match="not a UTF-8 text file"):
            read_annotations(tmp_path / name)


def test_data_root_remaps_longest_existing_suffix(tmp_path):
    root = tmp_path / "mine"
    for name in ("00001", "00002"):
        (root / "Clip" / "clip_224x224" / name).mkdir(parents=True)
    (root / "00001").mkdir()  # a shorter suffix that also exists must not win
    lst = tmp_path / "l.txt"
    lst.write_text("/data/lab/DFEW/Clip/clip_224x224/00001 3 0\n"
                   "/data/lab/DFEW/Clip/clip_224x224/00002 3 1\n")
    recs = read_annotations(lst, data_root=root)
    assert [r.path for r in recs] == [root / "Clip/clip_224x224/00001", root / "Clip/clip_224x224/00002"]


def test_remapper_caches_prefix(tmp_path):
    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "a" / "y").mkdir(parents=True)
    remap = PathRemapper(tmp_path)
    assert remap("/far/away/a/x") == tmp_path / "a/x"
    assert remap._prefixes == [(Path("/far/away"), tmp_path)]
    assert remap("/far/away/a/y") == tmp_path / "a/y"
    assert len(remap._prefixes) == 1
    assert remap("/far/away/a/z") == Path("/far/away/a/z")  # unmatched stays; the dataset reports it


def test_dfew_split_csv(tmp_path):
    split = tmp_path / "EmoLabel_DataSplit" / "train(single-labeled)"
    split.mkdir(parents=True)
    (split / "set_1.csv").write_text("video_name,label\n1,1\n23,7\n")
    frames = tmp_path / "Clip" / "clip_224x224"
    (frames / "00001").mkdir(parents=True)
    recs = read_annotations(split / "set_1.csv", data_root=tmp_path, num_classes=7)
    assert [(r.path, r.label) for r in recs] == [(frames / "00001", 0), (frames / "00023", 6)]
    assert read_annotations(split / "set_1.csv")[0].path == frames / "00001"  # root found from CSV
    (split / "set_1.csv").write_text("video_name,label\n99,1\n")
    with pytest.raises(DataError, match="cannot find the clip folder '00099'"):
        read_annotations(split / "set_1.csv", data_root=tmp_path)


def test_plain_csv_with_indices_and_names(tmp_path):
    csv = tmp_path / "clips.csv"
    csv.write_text("path,label,num_frames\nclips/a,2,9\nclips/b,Anger,\n")
    recs = read_annotations(csv, classes=["happiness", "sadness", "neutral", "anger"])
    assert [(r.path.name, r.label, r.num_frames) for r in recs] == [("a", 2, 9), ("b", 3, None)]
    csv.write_text("file,class\nx,1\n")
    with pytest.raises(DataError, match="'path' and 'label'"):
        read_annotations(csv)


def test_standard_split_finds_author_files_and_variants(tmp_path):
    ann = tmp_path / "annotation"
    ann.mkdir()
    for split in ("train", "test"):
        (ann / f"DFEW_set_2_{split}.txt").write_text("/x 1 0\n")
        (tmp_path / f"ferv39k_{split}.txt").write_text("/x 1 0\n")
    assert standard_split("dfew", tmp_path, 2) == (ann / "DFEW_set_2_train.txt",
                                                   ann / "DFEW_set_2_test.txt")
    train, test = standard_split("FERV39k", tmp_path, 1)
    assert (train.name, test.name) == ("ferv39k_train.txt", "ferv39k_test.txt")


def test_standard_split_dfew_csv(tmp_path):
    for split in ("train", "test"):
        d = tmp_path / "EmoLabel_DataSplit" / f"{split}(single-labeled)"
        d.mkdir(parents=True)
        (d / "set_3.csv").write_text("video_name,label\n1,1\n")
    train, test = standard_split("dfew", tmp_path, 3)
    assert train.name == "set_3.csv" and "test" in test.parent.name


def test_standard_split_errors(tmp_path):
    with pytest.raises(DataError, match=r"no mafw fold 4 split files under .*MAFW_set_4_train\.txt"):
        standard_split("mafw", tmp_path, 4)
    with pytest.raises(DataError, match="folds 1..1"):
        standard_split("ferv39k", tmp_path, 2)
    with pytest.raises(DataError, match="unknown dataset"):
        standard_split("afew", tmp_path, 1)
    with pytest.raises(DataError, match="data root not found"):
        standard_split("dfew", tmp_path / "nope", 1)


def test_clip_id_is_relative_to_the_data_root_then_the_list_folder(tmp_path):
    from trainer.data.annotations import clip_id

    lists, data = tmp_path / "lists", tmp_path / "data"
    assert clip_id(lists / "clips" / "a", lists / "train.txt") == "clips/a"
    assert clip_id(data / "x" / "00001", lists / "train.txt", data_root=data) == "x/00001"
    assert clip_id(lists / "sub" / ".." / "b.mp4", lists / "t.txt") == "b.mp4"
    outside = tmp_path / "elsewhere" / "c"
    assert clip_id(outside, lists / "train.txt") == outside.as_posix()
