"""The versioned store: immutability, exclusive version numbers, hashes, shipped fallback, errors."""

from __future__ import annotations

import json
import os
import threading

import fake_llm  # noqa: F401  (puts the real promptkit first on sys.path)
import pytest

from promptkit.classes import BUILTIN_CLASS_SETS
from promptkit.errors import ClassSetError, CorruptSetError, StoreError
from promptkit.sets import ClassEntry
from promptkit.store import Store, resolve_store_root


def entries(names, text="raised brows"):
    return [ClassEntry(name, [text], text + ".", 0) for name in names]


PROV = {"source": "test"}


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "store")


def test_add_then_load_round_trip(store):
    first = store.add("mine", entries(["joy", "calm"]), PROV, n_ctx=8)
    assert first.set_id == "mine/v1" and first.path == store.root / "mine" / "v1.json"
    assert first.classes[0].tokens == 3 and first.content_hash.startswith("sha256:")
    loaded = store.load("mine/v1")
    assert loaded == first and loaded.class_names == ["joy", "calm"]
    assert store.load("v1", class_set="mine") == first
    assert store.load("mine").version == 1  # latest
    assert store.load(str(first.path)) == first
    with pytest.raises(StoreError, match="holds class set 'mine', not 'mafw'"):
        store.load(str(first.path), class_set="mafw")


def test_versions_count_up_and_files_never_change(store):
    first = store.add("mine", entries(["joy", "calm"]), PROV, 8)
    before = first.path.read_bytes()
    second = store.add("mine", entries(["joy", "calm"], "wide smile"), PROV, 8)
    assert second.version == 2 and first.path.read_bytes() == before
    assert not os.access(first.path, os.W_OK) or os.geteuid() == 0  # read-only for non-root users
    assert oct(first.path.stat().st_mode & 0o777) == "0o444"
    assert not list((store.root / "mine").glob(".writing-*"))  # no temp files left behind


def test_concurrent_writers_never_share_a_version(store):
    results, errors = [], []

    def write(i):
        try:
            results.append(store.add("mine", entries(["joy", "calm"], f"cue {i}"), PROV, 8).version)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(results) == list(range(1, 9))
    texts = {store.load(f"mine/v{n}").classes[0].descriptors[0] for n in range(1, 9)}
    assert texts == {f"cue {i}" for i in range(8)}


def test_same_content_same_hash_regardless_of_version(store):
    a = store.add("mine", entries(["joy"]), PROV, 8)
    b = store.add("mine", entries(["joy"]), PROV, 8)
    assert a.version != b.version and a.content_hash == b.content_hash


def test_tampered_file_is_reported_with_its_name(store):
    ds = store.add("mine", entries(["joy", "calm"]), PROV, 8)
    data = json.loads(ds.path.read_text())
    data["classes"][0]["description"] = "edited by hand."
    ds.path.chmod(0o644)
    ds.path.write_text(json.dumps(data))
    with pytest.raises(CorruptSetError, match=r"v1\.json was modified after it was written"):
        store.load("mine/v1")


def test_corrupt_json_is_reported_with_its_name(store):
    folder = store.root / "mine"
    folder.mkdir(parents=True)
    (folder / "v1.json").write_text('{"format": "promptkit-descriptor-set", ')
    with pytest.raises(CorruptSetError, match=r"mine/v1\.json is not valid JSON"):
        store.load("mine/v1")
    [row] = store.list_sets("mine")
    assert row.problem and "not valid JSON" in row.problem


def test_misplaced_file_is_reported(store):
    ds = store.add("mine", entries(["joy"]), PROV, 8)
    os.replace(ds.path, ds.path.with_name("v5.json"))
    with pytest.raises(CorruptSetError, match="location says mine/v5"):
        store.load("mine/v5")


@pytest.mark.parametrize(
    ("ref", "class_set", "message"),
    [
        ("mine/v9", None, "unknown version mine/v9: class set 'mine' has v1"),
        ("v1", None, "needs a class set"),
        ("nosuch/v1", None, "no descriptor sets for class set 'nosuch'"),
        ("missing.json", None, "no such descriptor set file"),
        ("mine/v1", "other", "does not belong to class set 'other'"),
        ("Bad Ref!", None, "bad set reference"),
    ],
)
def test_bad_references(store, ref, class_set, message):
    store.add("mine", entries(["joy"]), PROV, 8)
    with pytest.raises(StoreError, match=message):
        store.load(ref, class_set)


def test_shipped_sets_fill_in_and_numbering_continues_after_them(store):
    shipped = store.load("mafw/v1")
    assert shipped.shipped and shipped.provenance["source"] == "hand-written"
    names = list(BUILTIN_CLASS_SETS["mafw"])
    new = store.add("mafw", entries(names), PROV, 8)
    assert new.version == 2 and new.path.parent == store.root / "mafw"
    assert store.load("mafw/v1").shipped and not store.load("mafw/v2").shipped
    rows = {row.set_id: row for row in store.list_sets()}
    assert rows["mafw/v1"].shipped and not rows["mafw/v2"].shipped and rows["dfew/v1"].shipped


def test_builtin_class_sets_must_keep_names_and_order(store):
    names = list(BUILTIN_CLASS_SETS["dfew"])
    names[0], names[1] = names[1], names[0]
    with pytest.raises(ClassSetError, match="same names, same label order"):
        store.add("dfew", entries(names), PROV, 8)
    store.add("mine", entries(["joy", "calm"]), PROV, 8)
    with pytest.raises(ClassSetError):
        store.add("mine", entries(["joy", "calm", "fear"]), PROV, 8)


def test_bad_content_is_refused(store):
    with pytest.raises(ClassSetError, match="duplicate"):
        store.add("mine", entries(["joy", "Joy"]), PROV, 8)
    with pytest.raises(StoreError, match="credentials"):
        store.add("mine", entries(["joy"]), {"source": "x", "api_key": "sk-1"}, 8)
    too_long = [ClassEntry("joy", [], " ".join(["smile"] * 80) + ".", 0)]
    with pytest.raises(Exception, match="over the budget"):
        store.add("mine", too_long, PROV, 8)
    assert not (store.root / "mine").exists() or not list((store.root / "mine").iterdir())


def test_unwritable_store(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    bad = Store(blocker / "store")
    with pytest.raises(StoreError, match="not writable"):
        bad.check_can_add("mine", ["joy"])
    with pytest.raises(StoreError, match="not writable"):
        bad.add("mine", entries(["joy"]), PROV, 8)


def test_store_root_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("PROMPTKIT_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert resolve_store_root(None) == tmp_path / "data" / "promptkit"  # a per-user data folder
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")  # ignored, as the XDG spec says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_store_root(None) == tmp_path / "home" / ".local" / "share" / "promptkit"
    monkeypatch.setenv("PROMPTKIT_STORE", str(tmp_path))
    assert resolve_store_root(None) == tmp_path
    assert resolve_store_root(tmp_path / "x") == tmp_path / "x"
