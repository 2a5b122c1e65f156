"""Descriptor-set format 2: negative descriptions and variants per class; format 1 files still load."""

from __future__ import annotations

import json

import fake_llm  # noqa: F401  (puts the real promptkit first on sys.path)
import pytest

from promptkit.errors import BudgetError, CorruptSetError, SetContentError, StoreError
from promptkit.resources import shipped_descriptions_dir
from promptkit.sets import FORMAT_VERSION, ClassEntry, NegativeEntry, set_from_dict
from promptkit.store import Store, load_file
from promptkit.tokens import count_tokens

PROV = {"source": "test"}


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "store")


def full_entry(name: str, n_variants: int = 2) -> ClassEntry:
    return ClassEntry(
        name, ["raised brows"], "raised brows.", 0,
        negative=NegativeEntry(["clenched jaw", "furrowed brow"], "clenched jaw, furrowed brow.", 0, ["- clenched jaw"]),
        variants=[f"raised brows, look {i}." for i in range(n_variants)],
    )


def _rewrite(path, data):
    copy = path.parent / "copy.json"
    copy.write_text(json.dumps(data))
    return copy


@pytest.mark.parametrize("class_set", ["dfew", "ferv39k", "mafw"])
def test_shipped_v1_sets_load_with_their_hash_unchanged(class_set):
    path = shipped_descriptions_dir() / class_set / "v1.json"
    raw = json.loads(path.read_text())
    ds = load_file(path)  # verifies the content hash
    assert raw["format_version"] == 1 and ds.format_version == 1
    assert ds.compute_record_hash() == raw["content_hash"] == ds.record_hash  # its one stored hash verifies
    assert ds.content_hash == ds.compute_hash() != raw["content_hash"]  # its identity: the texts' hash
    assert ds.to_dict() == raw  # written back byte-for-byte the same content: no new keys
    assert not ds.has_negatives and not ds.has_variants


def test_v1_file_with_a_negative_is_refused(tmp_path):
    data = json.loads((shipped_descriptions_dir() / "dfew" / "v1.json").read_text())
    data["classes"][0]["negative"] = {"descriptors": ["frown"], "dropped": [], "description": "frown.",
                                      "tokens": 1, "raw_answers": []}
    with pytest.raises(CorruptSetError, match="format_version 1 set cannot hold") as info:
        set_from_dict(data, "x.json", verify_hash=False)
    assert "\n" not in str(info.value) and "'negative'" in str(info.value)
    data["classes"][0].pop("negative")
    data["classes"][1]["variants"] = ["a frown."]
    with pytest.raises(CorruptSetError, match="'variants'"):
        set_from_dict(data, "x.json", verify_hash=False)


@pytest.mark.parametrize("bad", [4, 0, "2", 2.0, True, None])
def test_other_format_versions_are_refused(store, bad):
    written = store.add("mine", [full_entry("joy"), full_entry("calm")], PROV, 8)
    data = json.loads(written.path.read_text())
    data["format_version"] = bad
    with pytest.raises(CorruptSetError, match="unsupported format_version"):
        load_file(_rewrite(written.path, data))


def test_v2_set_round_trips_with_the_same_hash(store):
    written = store.add("mine", [full_entry("joy"), full_entry("calm", 3)], PROV, 8)
    assert written.format_version == FORMAT_VERSION == 3
    raw = json.loads(written.path.read_text())
    assert raw["format_version"] == 3 and raw["classes"][1]["variants"][2] == "raised brows, look 2."
    loaded = store.load("mine/v1")
    assert loaded == written and loaded.content_hash == loaded.compute_hash() == written.content_hash
    assert loaded.has_negatives and loaded.has_variants
    assert loaded.negative_descriptions == ["clenched jaw, furrowed brow."] * 2
    assert loaded.variant_descriptions[1] == ["raised brows, look 0.", "raised brows, look 1.", "raised brows, look 2."]
    assert loaded.classes[0].negative.tokens == count_tokens("clenched jaw, furrowed brow.")  # counted by the store
    assert loaded.classes[0].negative.raw_answers == ["- clenched jaw"]


def test_a_set_without_negatives_or_variants_says_how_to_make_one(store):
    plain = store.add("mine", [ClassEntry("joy", ["smile"], "smile.", 0), ClassEntry("calm", ["still"], "still.", 0)],
                      PROV, 8)
    assert plain.format_version == 3 and "negative" not in plain.path.read_text()
    with pytest.raises(SetContentError, match=r"set mine/v1 has no negative descriptions: .*generate --negatives"):
        _ = plain.negative_descriptions
    with pytest.raises(SetContentError, match=r"set mine/v1 has no variants .*--samples N --variants"):
        _ = plain.variant_descriptions
    assert plain.descriptions == ["smile.", "still."]


def test_negatives_or_variants_on_only_some_classes_are_refused(store):
    partial = [full_entry("joy"), ClassEntry("calm", ["still"], "still.", 0)]
    with pytest.raises(StoreError, match=r"1 of 2 classes have negative descriptions but 'calm' has none"):
        store.add("mine", partial, PROV, 8)
    partial = [full_entry("joy"), full_entry("calm")]
    partial[1].variants = []
    with pytest.raises(StoreError, match=r"1 of 2 classes have variants but 'calm' has none"):
        store.add("mine", partial, PROV, 8)
    assert not (store.root / "mine").exists() or not list((store.root / "mine").glob("v*.json"))


def test_negatives_and_variants_are_held_to_the_budget(store):
    long = " ".join(["smile"] * 80) + "."
    entries = [full_entry("joy"), full_entry("calm")]
    entries[1].negative.description = long
    with pytest.raises(BudgetError, match=r"class 'calm \(negative\)' description uses 81 tokens"):
        store.add("mine", entries, PROV, 8)
    entries = [full_entry("joy"), full_entry("calm")]
    entries[0].variants[1] = long
    with pytest.raises(BudgetError, match=r"class 'joy \(variant 2\)'"):
        store.add("mine", entries, PROV, 8)
    entries = [full_entry("joy"), full_entry("calm")]
    entries[0].variants[0] = "  "
    with pytest.raises(StoreError, match=r"'joy \(variant 1\)' has an empty description"):
        store.add("mine", entries, PROV, 8)
