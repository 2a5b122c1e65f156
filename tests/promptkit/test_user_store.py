"""Where sets live: a user's own in a user store (--store, $PROMPTKIT_STORE, else the per-user data
folder), the shipped ones read-only in the package's (checkout's) descriptions/ folder."""

from __future__ import annotations

import json

import pytest
from fake_llm import REPO, run_cli

from promptkit.errors import StoreError
from promptkit.resources import shipped_descriptions_dir
from promptkit.sets import ClassEntry
from promptkit.store import Store


def _shipped_files() -> set:
    return {p.relative_to(shipped_descriptions_dir()) for p in shipped_descriptions_dir().rglob("*")}


@pytest.fixture
def data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("PROMPTKIT_STORE", raising=False)
    return tmp_path / "data" / "promptkit"


def test_sets_added_from_the_repository_root_go_to_the_user_store(data_home, monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)  # where ./descriptions is the shipped folder
    before = _shipped_files()
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(Store(data_home).load("dfew/v1").to_dict()))
    result = run_cli("add", edited)
    assert result.code == 0, result.err
    assert _shipped_files() == before  # the shipped folder is untouched
    assert (data_home / "dfew" / "v3.json").is_file()
    listing = json.loads(run_cli("list", "dfew", "--json").out)
    where = {row["set_id"]: (row["shipped"], row["where"]) for row in listing}
    assert where == {"dfew/v1": (True, "shipped"), "dfew/v2": (True, "shipped"), "dfew/v3": (False, str(data_home))}
    table = run_cli("list", "dfew").out
    assert "shipped (read-only)" in table and str(data_home) in table


def test_the_shipped_folder_is_never_a_store_to_write(data_home, tmp_path):
    before = _shipped_files()
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(Store(data_home).load("mafw/v1").to_dict()))
    for store in (shipped_descriptions_dir(), shipped_descriptions_dir() / "mafw"):
        result = run_cli("add", edited, "--store", store)
        assert result.code == 1 and result.err.count("\n") == 1, result.err
        assert "holds the shipped sets, which are read-only" in result.err and "--store" in result.err
    with pytest.raises(StoreError, match="read-only"):
        Store(shipped_descriptions_dir()).add("mine", [ClassEntry("joy", [], "a smile.", 0)], {"source": "t"}, 8)
    assert _shipped_files() == before
    shown = run_cli("show", "mafw/v1", "--store", shipped_descriptions_dir())  # reading it is fine
    assert shown.code == 0 and "(shipped)" in shown.out
