"""Export / import as CSV and as a Hugging Face dataset, and hand-edited JSON."""

from __future__ import annotations

import csv
import json

import fake_llm  # noqa: F401  (puts the real promptkit first on sys.path)
import pytest

from promptkit.errors import ClassSetError, ExchangeError, PromptkitError
from promptkit.exchange import export_csv, export_hf, import_set
from promptkit.store import Store


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "store")


def test_csv_round_trip(store, tmp_path):
    shipped = store.load("dfew/v1")
    out = export_csv(shipped, tmp_path / "dfew.csv")
    rows = list(csv.DictReader(out.open()))
    assert [r["name"] for r in rows] == shipped.class_names and rows[0]["class_set"] == "dfew"
    again = import_set(out, store)
    assert again.set_id == "dfew/v3"  # the next version after the shipped v1 and v2
    assert again.descriptions == shipped.descriptions
    assert [e.descriptors for e in again.classes] == [e.descriptors for e in shipped.classes]
    assert again.provenance["source"] == "imported" and again.provenance["parent"] == "dfew/v1"


def test_hf_round_trip(store, tmp_path):
    import datasets

    shipped = store.load("mafw/v1")
    out = export_hf(shipped, tmp_path / "mafw_hf")
    loaded = datasets.load_from_disk(str(out))
    assert loaded["name"] == shipped.class_names and loaded["label"] == list(range(11))
    assert json.loads(loaded.info.description)["set_id"] == "mafw/v1"
    again = import_set(out, store)
    assert again.set_id == "mafw/v2" and again.descriptions == shipped.descriptions
    assert again.provenance["imported_from"] == "hf"


def test_csv_rows_are_put_in_label_order(store, tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("label,name,description\n1,calm,relaxed brow.\n0,joy,wide smile.\n")
    ds = import_set(path, store, class_set="mine")
    assert ds.class_names == ["joy", "calm"] and ds.classes[0].tokens == 3


def test_hand_edited_json(store, tmp_path):
    data = store.load("mafw/v1").to_dict()
    data["classes"][3]["description"] = "brows pulled down hard, glaring eyes, bared teeth."
    data["classes"][3].pop("descriptors")  # the description, as written, is the text; no stale descriptors
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    ds = import_set(path, store, source="hand-edited")
    assert ds.set_id == "mafw/v2" and ds.classes[3].description.startswith("brows pulled down hard")
    assert ds.provenance["source"] == "hand-edited" and ds.provenance["parent"] == "mafw/v1"


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("name,description\njoy,\n", ExchangeError, "give a description or descriptors"),
        ("label,name,description\n0,joy,a.\n0,calm,b.\n", ExchangeError, "labels must be 0..1"),
        ("description\nwide smile.\n", ExchangeError, "header"),
        ("name,description\njoy,a.\njoy,b.\n", ClassSetError, "duplicate"),
        ("name,description\njoy," + "smile " * 70 + "\n", PromptkitError, "over the budget"),
    ],
)
def test_bad_imports_write_nothing(store, tmp_path, text, error, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(error, match=message):
        import_set(path, store, class_set="mine")
    assert not (store.root / "mine").exists() or not list((store.root / "mine").glob("v*.json"))


def test_exports_never_overwrite(store, tmp_path):
    target = tmp_path / "exists.csv"
    target.write_text("keep me")
    with pytest.raises(ExchangeError, match="already exists"):
        export_csv(store.load("dfew/v1"), target)
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("n_ctx", ["eight", 8.5, True, None])
def test_hand_edited_n_ctx_must_be_a_whole_number(store, tmp_path, n_ctx):
    data = store.load("dfew/v1").to_dict()
    data["n_ctx"] = n_ctx
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    if n_ctx is None:  # absent from the file: the default 8
        assert import_set(path, store).n_ctx == 8
        return
    with pytest.raises(ExchangeError, match="n_ctx must be a whole number"):
        import_set(path, store)
    assert import_set(path, store, n_ctx=4).n_ctx == 4  # --contexts overrides the file's value


def test_an_export_import_round_trip_keeps_the_content_hash(store, tmp_path):
    shipped = store.load("dfew/v1")
    again = import_set(export_csv(shipped, tmp_path / "dfew.csv"), store)
    assert again.descriptions == shipped.descriptions and again.provenance != shipped.provenance
    assert again.content_hash == shipped.content_hash  # identity = what trains, not where it came from
    assert store.load(again.set_id).content_hash == shipped.content_hash
    assert again.record_hash != shipped.record_hash  # the records differ (provenance)


def test_the_content_hash_reads_texts_as_clip_does(store, tmp_path):
    from promptkit.sets import ClassEntry

    def stored(*descriptions):
        return store.add("mine", [ClassEntry(n, [], d, 0) for n, d in zip(("joy", "calm"), descriptions)],
                         {"source": "test"}, 8)

    base = stored("raised cheeks, wide smile.", "relaxed brow.")
    assert stored("Raised  cheeks,\twide smile.", "relaxed brow. ").content_hash == base.content_hash
    assert stored("raised cheeks, a wide smile.", "relaxed brow.").content_hash != base.content_hash


def test_an_edited_provenance_is_still_refused(store):
    from promptkit.errors import CorruptSetError
    from promptkit.sets import ClassEntry

    ds = store.add("mine", [ClassEntry("joy", [], "a smile.", 0)], {"source": "test"}, 8)
    data = json.loads(ds.path.read_text())
    assert data["format_version"] == 3 and data["record_hash"].startswith("sha256:")
    data["provenance"]["source"] = "someone else"
    ds.path.chmod(0o644)
    ds.path.write_text(json.dumps(data))
    with pytest.raises(CorruptSetError, match="modified after it was written"):
        store.load("mine/v1")


@pytest.mark.parametrize("edit", ["description", "descriptors"])
def test_a_hand_edit_of_one_field_only_is_refused_in_one_line(tmp_path, edit):
    from fake_llm import run_cli

    data = Store(tmp_path / "store").load("mafw/v1").to_dict()
    anger = data["classes"][3]
    if edit == "description":  # the text that trains changed, the descriptors went stale
        anger["description"] = "brows pulled down hard, glaring eyes, bared teeth."
    else:  # a descriptor added, the text that trains left as it was
        anger["descriptors"].append("bared teeth")
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    result = run_cli("add", path, "--store", tmp_path / "store")
    assert result.code == 1 and result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert "class 'anger'" in result.err and "is not its descriptors joined" in result.err
    assert not (tmp_path / "store" / "mafw").exists()
    anger["description"] = ", ".join(anger["descriptors"]) + "."  # both edited together: stored
    path.write_text(json.dumps(data))
    assert run_cli("add", path, "--store", tmp_path / "store").code == 0
