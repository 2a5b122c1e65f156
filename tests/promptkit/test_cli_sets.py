"""The descriptor-set commands: show, list, diff, tokens, add, export, import; errors as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fake_llm import REPO, run_cli


def test_show_json_has_the_documented_fields(tmp_path):
    result = run_cli("show", "mafw/v1", "--store", tmp_path, "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["version"] == 1 and data["class_set"] == "mafw"
    assert data["provenance"]["source"] == "hand-written"
    assert [c["name"] for c in data["classes"]][-1] == "disappointment"
    assert {"name", "descriptors", "description", "tokens"} <= set(data["classes"][0])


def test_show_table_and_bare_version(tmp_path):
    result = run_cli("show", "v1", "--class-set", "dfew", "--store", tmp_path)
    assert result.code == 0, result.err
    assert "dfew/v1" in result.out and "(shipped)" in result.out and "happiness" in result.out


def test_add_hand_edited_then_list_diff_tokens(tmp_path):
    store = tmp_path / "store"
    data = json.loads(run_cli("show", "mafw/v1", "--store", store, "--json").out)
    data["classes"][7]["descriptors"] = ["one lip corner raised", "smirk"]
    data["classes"][7]["description"] = ""  # rebuilt from the descriptors
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    added = run_cli("add", edited, "--store", store)
    assert added.code == 0, added.err
    assert "wrote mafw/v2" in added.out

    listing = run_cli("list", "--store", store)
    assert "mafw/v2" in listing.out and "hand-edited" in listing.out and "shipped" in listing.out

    diff = run_cli("diff", "mafw/v1", "v2", "--store", store)
    assert diff.code == 0, diff.err
    assert "contempt" in diff.out and "smirk" in diff.out and "happiness" not in diff.out
    same = run_cli("diff", "mafw/v1", "mafw/v1", "--store", store)
    assert "same descriptors" in same.out

    tokens = run_cli("tokens", "mafw/v2", "--contexts", "60", "--store", store, "--json")
    rows = json.loads(tokens.out)
    assert [r["name"] for r in rows][7] == "contempt"
    assert all(r["budget"] == 15 for r in rows)
    over = [r for r in rows if not r["fits"]]
    assert over and all(r["would_drop"] for r in over)
    table = run_cli("tokens", "mafw/v2", "--contexts", "60", "--store", store)
    assert "over by" in table.out and "at --contexts 60" in table.out


def test_add_rejects_an_over_budget_description(tmp_path):
    data = json.loads(run_cli("show", "dfew/v1", "--store", tmp_path, "--json").out)
    data["classes"][0]["description"] = "smile " * 70
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    result = run_cli("add", edited, "--store", tmp_path / "store")
    assert result.code == 1
    assert result.err.startswith("error: class 'happiness' description uses") and "over the budget of 67" in result.err
    assert not (tmp_path / "store").exists() or not list((tmp_path / "store").rglob("v*.json"))


@pytest.mark.parametrize("fmt", ["csv", "hf"])
def test_export_and_import_commands(tmp_path, fmt):
    store = tmp_path / "store"
    out = tmp_path / ("ferv.csv" if fmt == "csv" else "ferv_hf")
    exported = run_cli("export", "ferv39k/v1", out, "--format", fmt, "--store", store)
    assert exported.code == 0, exported.err
    assert out.exists()
    imported = run_cli("import", out, "--store", store)
    assert imported.code == 0, imported.err
    assert "wrote ferv39k/v2" in imported.out
    again = run_cli("export", "ferv39k/v1", out, "--format", fmt, "--store", store)
    assert again.code == 1 and "already exists" in again.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "mafw/v7"], "error: unknown version mafw/v7"),
        (["show", "nosuch/v1"], "error: no descriptor sets for class set 'nosuch'"),
        (["show", "v1"], "needs a class set"),
        (["export", "mafw/v1", "x.out", "--format", "xml"], "unknown --format 'xml'"),
        (["add", "edited.csv"], "takes a .json file"),
    ],
)
def test_errors_are_one_line(tmp_path, args, message):
    result = run_cli(*args, "--store", tmp_path)
    assert result.code == 1
    assert result.err.count("\n") == 1 and message in result.err


def test_corrupt_file_names_the_file(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "v1.json").write_text("{ not json")
    result = run_cli("show", "mine/v1", "--store", tmp_path)
    assert result.code == 1 and "mine/v1.json is not valid JSON" in result.err
    listing = run_cli("list", "--store", tmp_path)
    assert listing.code == 0 and "CORRUPT" in listing.out


def test_console_script_exit_status(tmp_path):
    env = {**os.environ, "PROMPTKIT_STORE": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", "from promptkit.cli import main; main()", "show", "mafw/v9"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: unknown version mafw/v9: class set 'mafw' has v1"
    ]


def test_diff_across_class_sets(tmp_path):
    # Sets of two class sets compare label by label; only a bare version borrows A's class set.
    same_labels = run_cli("diff", "dfew/v1", "ferv39k/v1", "--store", tmp_path, "--json")
    assert same_labels.code == 0, same_labels.err
    assert [c["name_b"] for c in json.loads(same_labels.out)][:2] == ["happiness", "sadness"]
    longer = json.loads(run_cli("diff", "dfew/v1", "mafw/v1", "--store", tmp_path, "--json").out)
    assert len(longer) == 11 and longer[7]["name_a"] is None and longer[7]["name_b"] == "contempt"
    refused = run_cli("diff", "dfew/v1", "mafw/v1", "--class-set", "dfew", "--store", tmp_path)
    assert refused.code != 0 and "does not belong to class set 'dfew'" in refused.err
