"""Export / import of sets with negative descriptions and variants: CSV, HF dataset, hand-edited JSON."""

from __future__ import annotations

import csv
import json

import fake_llm  # noqa: F401  (puts the real promptkit first on sys.path)
import pytest

from promptkit.errors import PromptkitError, StoreError
from promptkit.exchange import export_csv, export_hf, import_set
from promptkit.sets import ClassEntry, NegativeEntry
from promptkit.store import Store

NAMES = ["joy", "calm"]


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "store")


@pytest.fixture
def full_set(store):
    entries = [
        ClassEntry(name, [f"{name} brows", f"{name} mouth"], f"{name} brows, {name} mouth.", 0, [f"- {name} brows"],
                   negative=NegativeEntry([f"no {name} frown", "tears"], f"no {name} frown, tears.", 0, ["- tears"]),
                   variants=[f"{name} brows.", f"{name} mouth, {name} eyes."])
        for name in NAMES
    ]
    return store.add("mine", entries, {"source": "test"}, 8)


def _same_extras(a, b):
    assert a.negative_descriptions == b.negative_descriptions
    assert [e.negative.descriptors for e in a.classes] == [e.negative.descriptors for e in b.classes]
    assert a.variant_descriptions == b.variant_descriptions
    assert a.descriptions == b.descriptions


def test_csv_round_trip_with_negatives_and_variants(store, full_set, tmp_path):
    out = export_csv(full_set, tmp_path / "mine.csv")
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["negative"] == "no joy frown, tears." and rows[0]["negative_descriptors"] == "no joy frown | tears"
    assert rows[1]["variants"] == "calm brows. | calm mouth, calm eyes."
    again = import_set(out, store)
    assert again.set_id == "mine/v2" and again.format_version == 3
    _same_extras(full_set, again)


def test_csv_of_a_set_without_them_keeps_the_old_columns(store, tmp_path):
    out = export_csv(store.load("dfew/v1"), tmp_path / "dfew.csv")
    header = out.read_text().splitlines()[0]
    assert header == "label,name,description,tokens,descriptors,dropped,class_set,version,content_hash"


def test_hf_round_trip_with_negatives_and_variants(store, full_set, tmp_path):
    import datasets

    out = export_hf(full_set, tmp_path / "mine_hf")
    loaded = datasets.load_from_disk(str(out))
    assert loaded[0]["negative"]["description"] == "no joy frown, tears." and loaded[1]["variants"][0] == "calm brows."
    again = import_set(out, store)
    assert again.set_id == "mine/v2"
    _same_extras(full_set, again)
    assert again.classes[0].negative.raw_answers == ["- tears"]


def test_json_round_trip_and_hand_edits(store, full_set, tmp_path):
    data = full_set.to_dict()
    path = tmp_path / "same.json"
    path.write_text(json.dumps(data))
    _same_extras(full_set, import_set(path, store, source="hand-edited"))

    data["classes"][0]["negative"] = "a deep frown, clenched teeth."  # plain text is a description
    data["classes"][1]["negative"] = {"descriptors": ["slack jaw", "wide eyes"]}  # rebuilt from the descriptors
    data["classes"][1]["variants"] = ["calm brows.", "  soft   gaze. "]
    path.write_text(json.dumps(data))
    edited = import_set(path, store, source="hand-edited")
    assert edited.negative_descriptions == ["a deep frown, clenched teeth.", "slack jaw, wide eyes."]
    assert edited.classes[1].negative.descriptors == ["slack jaw", "wide eyes"]
    assert edited.variant_descriptions[1] == ["calm brows.", "soft gaze."]


def test_hand_edits_with_negatives_for_some_classes_only_are_refused(store, full_set, tmp_path):
    data = full_set.to_dict()
    data["classes"][1].pop("negative")
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(data))
    with pytest.raises(StoreError, match="1 of 2 classes have negative descriptions but 'calm' has none"):
        import_set(path, store)
    data = full_set.to_dict()
    data["classes"][0]["negative"] = ["not", "text"]
    path.write_text(json.dumps(data))
    with pytest.raises(PromptkitError, match="negative must be a description"):
        import_set(path, store)
    assert len(store.versions("mine")) == 1


def test_diff_mentions_negative_and_variant_changes(store, full_set):
    from fake_llm import run_cli

    plain = [ClassEntry(name, list(e.descriptors), e.description, 0) for name, e in zip(NAMES, full_set.classes)]
    store.add("mine", plain, {"source": "test"}, 8)  # mine/v2: same descriptions, no extras
    result = run_cli("diff", "mine/v2", "mine/v1", "--store", store.root, "--json")
    assert result.code == 0, result.err
    changes = json.loads(result.out)
    assert all(c["changed"] and not c["added"] and not c["removed"] for c in changes)
    assert changes[0]["negative_a"] is None and changes[0]["negative_b"] == "no joy frown, tears."
    table = run_cli("diff", "mine/v2", "mine/v1", "--store", store.root)
    assert "negative added" in table.out and "variants 0 -> 2" in table.out
    same = run_cli("diff", "mine/v1", "mine/v1", "--store", store.root)
    assert "same descriptors" in same.out


def test_a_variant_holding_the_separator_round_trips_through_csv(store, tmp_path):
    variants = ["brows up | eyes wide.", "a smile, no \\ frown.", "a\\|b smile."]
    entries = [ClassEntry(name, [f"{name} brows"], f"{name} brows.", 0, variants=list(variants),
                          negative=NegativeEntry(["drooping lids | frown", "tears"], "drooping lids | frown, tears.", 0))
               for name in NAMES]
    written = store.add("mine", entries, {"source": "test"}, 8)
    again = import_set(export_csv(written, tmp_path / "mine.csv"), store)
    assert again.variant_descriptions == [variants, variants]
    assert again.classes[0].negative.descriptors == ["drooping lids | frown", "tears"]


def test_an_excel_csv_with_a_byte_order_mark_keeps_its_labels(store, tmp_path):
    plain = tmp_path / "mine.csv"
    plain.write_text("label,name,description\n1,calm,calm brows.\n0,joy,joy brows.\n", encoding="utf-8-sig")
    assert plain.read_bytes().startswith(b"\xef\xbb\xbf")
    mine = import_set(plain, store, class_set="mine")
    assert mine.class_names == ["joy", "calm"] and mine.descriptions == ["joy brows.", "calm brows."]
    shipped = store.load("dfew/v1")
    rows = [f"{label},{entry.name},{entry.name} face." for label, entry in enumerate(shipped.classes)]
    dfew = tmp_path / "dfew.csv"
    dfew.write_text("label,name,description\n" + "\n".join(reversed(rows)) + "\n", encoding="utf-8-sig")
    imported = import_set(dfew, store, class_set="dfew")
    assert imported.class_names == shipped.class_names
