"""Clip-text sets: the store (versions, immutability, hashes) and list/show/export of them."""

from __future__ import annotations

import csv
import json
import os

import pytest
from fake_llm import run_cli

from promptkit.classes import check_set_name
from promptkit.cliptexts import ClipTextStore
from promptkit.errors import ClassSetError, CorruptSetError, StoreError
from promptkit.store import Store

PROV = {"source": "vision-llm", "model": "m", "created": "2026-01-01T00:00:00+00:00"}


def add_world(root, name="world", texts=None, missing=None):
    texts = {"a/001": "brows rise, then relax", "a/002": "jaw drops"} if texts is None else texts
    missing = {"b/003": "refusal"} if missing is None else missing
    return ClipTextStore(root).add(name, texts, missing, PROV)


def test_add_then_load_by_name_version_latest_and_path(tmp_path):
    store = ClipTextStore(tmp_path)
    first = add_world(tmp_path)
    assert first.set_id == "world/v1" and first.path == tmp_path / "clip-texts" / "world" / "v1.json"
    assert first.content_hash.startswith("sha256:")
    second = add_world(tmp_path, texts={"a/001": "eyes narrow"})
    assert second.version == 2
    for ref in ("world", "world/latest", "world/v2", str(second.path)):
        loaded = store.load(ref)
        assert (loaded.set_id, loaded.texts, loaded.missing) == ("world/v2", {"a/001": "eyes narrow"}, {"b/003": "refusal"})
    assert store.load("world/v1").texts == first.texts and store.load("world/v1").provenance == PROV
    assert [row.set_id for row in store.list()] == ["world/v1", "world/v2"]


def test_same_content_same_hash_and_files_are_read_only(tmp_path):
    one, two = add_world(tmp_path), add_world(tmp_path)
    assert one.content_hash == two.content_hash and one.path != two.path
    assert not os.access(one.path, os.W_OK) or os.geteuid() == 0


def test_an_edited_file_is_refused(tmp_path):
    made = add_world(tmp_path)
    data = json.loads(made.path.read_text())
    data["texts"]["a/001"] = "brows fall"
    made.path.chmod(0o644)
    made.path.write_text(json.dumps(data))
    with pytest.raises(CorruptSetError, match="modified after it was written"):
        ClipTextStore(tmp_path).load("world/v1")
    assert "CORRUPT" in run_cli("list", "--store", tmp_path).out


@pytest.mark.parametrize("texts, missing, prov, message", [
    ({"a": "x"}, {"a": "refusal"}, PROV, "both a text and a missing reason"),
    ({"a": "  "}, {}, PROV, "empty"),
    ({}, {}, PROV, "no clips"),
    ({"a": "x"}, {}, {**PROV, "api_key": "sk-1"}, "credentials"),
    ({"a": "x"}, {}, {"model": "m"}, "source"),
])
def test_bad_content_is_refused_and_nothing_written(tmp_path, texts, missing, prov, message):
    with pytest.raises(StoreError, match=message):
        ClipTextStore(tmp_path).add("world", texts, missing, prov)
    assert not (tmp_path / "clip-texts" / "world").exists()


def test_bad_names_and_references(tmp_path):
    store = ClipTextStore(tmp_path)
    with pytest.raises(StoreError, match="bad clip-text set name"):
        store.add("World!", {"a": "x"}, {}, PROV)
    with pytest.raises(StoreError, match="no clip-text set 'nothing'"):
        store.load("nothing")
    add_world(tmp_path)
    with pytest.raises(StoreError, match="world/v7: clip-text set 'world' has v1"):
        store.load("world/v7")


def test_the_clip_texts_folder_is_never_a_class_set(tmp_path):
    with pytest.raises(ClassSetError, match="reserved"):
        check_set_name("clip-texts")
    add_world(tmp_path)
    (tmp_path / "clip-texts" / "v1.json").write_text("{}")  # even a stray version-like file there
    assert "clip-texts" not in Store(tmp_path).class_sets()


def test_list_show_and_export_a_clip_text_set(tmp_path):
    add_world(tmp_path)
    listed = run_cli("list", "--store", tmp_path)
    assert listed.code == 0, listed.err
    assert "clip-text sets" in listed.out and "world/v1" in listed.out and "dfew/v1" in listed.out
    rows = json.loads(run_cli("list", "--store", tmp_path, "--json").out)
    mine = [row for row in rows if row["kind"] == "clip-texts"]
    assert [(r["set_id"], r["n_clips"], r["n_missing"]) for r in mine] == [("world/v1", 3, 1)]
    shown = run_cli("show", "world", "--store", tmp_path)
    assert shown.code == 0, shown.err
    assert "brows rise, then relax" in shown.out and "missing: refusal" in shown.out
    assert json.loads(run_cli("show", "world/v1", "--store", tmp_path, "--json").out)["texts"]["a/002"] == "jaw drops"
    out = tmp_path / "world.csv"
    exported = run_cli("export", "world/v1", out, "--store", tmp_path)
    assert exported.code == 0, exported.err
    with open(out, newline="", encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    assert list(read[0]) == ["clip_id", "text", "missing_reason"]
    assert [(r["clip_id"], r["text"], r["missing_reason"]) for r in read] == [
        ("a/001", "brows rise, then relax", ""), ("a/002", "jaw drops", ""), ("b/003", "", "refusal")]


def test_export_as_a_dataset(tmp_path):
    import datasets

    add_world(tmp_path)
    out = tmp_path / "world-hf"
    assert run_cli("export", "world", out, "--format", "hf", "--store", tmp_path).code == 0
    loaded = datasets.load_from_disk(str(out))
    assert loaded["clip_id"] == ["a/001", "a/002", "b/003"] and loaded["missing_reason"][2] == "refusal"


def test_a_name_of_both_kinds_needs_kind(tmp_path):
    add_world(tmp_path, name="dfew")  # the shipped descriptor sets have dfew too
    result = run_cli("show", "dfew", "--store", tmp_path)
    assert result.code == 1 and "--kind" in result.err and len(result.err.strip().splitlines()) == 1
    assert "hash" in run_cli("show", "dfew", "--kind", "clip-texts", "--store", tmp_path).out
    assert "happiness" in run_cli("show", "dfew", "--kind", "descriptions", "--store", tmp_path).out
    assert run_cli("export", "dfew", tmp_path / "x.csv", "--store", tmp_path).code == 1
    assert run_cli("export", "dfew", tmp_path / "x.csv", "--kind", "clip-texts", "--store", tmp_path).code == 0
    bad = run_cli("show", "dfew", "--kind", "both", "--store", tmp_path)
    assert bad.code == 1 and "unknown --kind" in bad.err
