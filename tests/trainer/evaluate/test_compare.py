"""`promptkit compare` through the CLI on a tiny generated split: zero-shot templates, a trained
run, --train, and the bad inputs (one `error:` line, non-zero exit)."""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_runner import run_cli as promptkit

# the tiny random-weight backbone (the default preset's tinyface has shipped weights): fast, and it
# keeps the no-weights paths covered
TINY = ["--set", "model.backbone=tiny", "--set", "model.pretrained=null", "--set", "data.synth_train_per_class=2", "--set", "data.synth_test_per_class=2",
        "--set", "data.synth_size=32", "--frames", "2", "--workers", "0"]
CLASSES = ["happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear"]


def read_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny synthetic split and a 1-epoch `trainer run` on it."""
    from trainer.cli import main as trainer_main

    base = tmp_path_factory.mktemp("compare")
    synth = ["--set", f"data.synth_dir={base / 'synth'}", *TINY]
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as stop:
        trainer_main(["run", "--epochs", "1", "--batch", "4", *synth, "--out", str(base / "run"), "--quiet"])
    assert stop.value.code == 0, err.getvalue()
    return SimpleNamespace(base=base, synth=synth, run=base / "run")


def assert_one_error_line(result, *fragments: str) -> None:
    assert result.code != 0
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_zero_shot_templates_and_a_trained_run_in_one_table(tiny, tmp_path):
    out = tmp_path / "cmp"
    result = promptkit("compare", *tiny.synth, "--run", tiny.run, "--out", out)
    assert result.code == 0, result.err
    rows = read_rows(out / "compare.csv")
    assert [r["variant"] for r in rows] == ["photo_of", "expression_of", "class_name", "description", "run"]
    assert [r["kind"] for r in rows] == ["zero-shot"] * 4 + ["trained"]
    assert "a photo of happiness." in rows[0]["texts"] and "cheeks raised" in rows[3]["texts"]
    for row in rows:  # every class has 2 test clips: UAR is the mean recall and equals WAR
        recalls = [float(row[f"recall_{c}"]) for c in CLASSES]
        assert float(row["uar"]) == pytest.approx(sum(recalls) / len(recalls), abs=1e-3)
        assert float(row["war"]) == pytest.approx(float(row["uar"]), abs=1e-3)
    summary = json.loads((tiny.run / "summary.json").read_text())
    assert float(rows[-1]["uar"]) == pytest.approx(summary["uar"], abs=1e-3)  # same split, same model
    data = json.loads((out / "compare.json").read_text())
    assert data["n_clips"] == 14 and all(sum(map(sum, r["confusion"])) == 14 for r in data["rows"])
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "UAR %" in result.out and "description" in result.out and "compare.csv" in result.out


def test_templates_share_one_backbone(tiny, tmp_path):
    own = tmp_path / "photo_of.j2"
    own.write_text("a photo of {{ class_name }}.\n")
    out = tmp_path / "cmp"
    result = promptkit("compare", *tiny.synth, "--template", "photo_of", "--template", own, "--out", out)
    assert result.code == 0, result.err
    rows = read_rows(out / "compare.csv")
    assert [r["variant"] for r in rows] == ["photo_of", "photo_of-2"]
    same = ["uar", "war", *(f"recall_{c}" for c in CLASSES)]
    assert [rows[0][k] for k in same] == [rows[1][k] for k in same]


def test_train_runs_both_learned_context_variants_with_one_budget(tiny, tmp_path):
    out = tmp_path / "cmp"
    args = ["compare", *tiny.synth, "--train", "--epochs", "1", "--batch", "4", "--template", "class_name",
            "--out", out, "--quiet"]
    result = promptkit(*args)
    assert result.code == 0, result.err
    rows = read_rows(out / "compare.csv")
    assert [(r["variant"], r["kind"]) for r in rows] == [
        ("class_name", "zero-shot"), ("ctx+classnames", "trained"), ("ctx+descriptions", "trained")]
    configs = {name: json.loads((out / "runs" / name / "config.json").read_text())
               for name in ("ctx_classnames", "ctx_descriptions")}
    assert configs["ctx_classnames"]["text"]["source"] == "classnames"
    assert configs["ctx_descriptions"]["text"]["source"] == "descriptions"
    assert configs["ctx_classnames"]["optim"] == configs["ctx_descriptions"]["optim"]
    assert configs["ctx_classnames"]["optim"]["epochs"] == 1
    again = promptkit(*args)  # finished runs with the same config are reused, not retrained
    assert again.code == 0, again.err
    assert again.err.count("reusing the finished run") == 2
    assert read_rows(out / "compare.csv") == rows
    (out / "runs" / "ctx_classnames" / "config.json").write_text("{broken")  # a damaged run is retrained
    third = promptkit(*args)
    assert third.code == 0, third.err
    assert third.err.count("reusing the finished run") == 1 and "training ctx_classnames" in third.err
    assert json.loads((out / "runs" / "ctx_classnames" / "config.json").read_text()) == configs["ctx_classnames"]


def test_interpret_reads_a_trainer_run(tiny, tmp_path):
    result = promptkit("interpret", tiny.run, "--top-k", "2", "--out", tmp_path / "ctx.json")
    assert result.code == 0, result.err
    data = json.loads((tmp_path / "ctx.json").read_text())
    assert [c["class"] for c in data["contexts"]] == CLASSES
    assert all(len(c["positions"]) == 8 and all(len(p) == 2 for p in c["positions"]) for c in data["contexts"])
    assert data["vocabulary"].startswith("class texts only")
    assert (tmp_path / "ctx.csv").is_file() and "happiness: reads as" in result.out


def test_run_folder_without_checkpoint(tiny, tmp_path):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    result = promptkit("compare", *tiny.synth, "--run", empty, "--out", tmp_path / "cmp")
    assert_one_error_line(result, str(empty), "no checkpoint")
    assert not (tmp_path / "cmp").exists()


def test_run_trained_on_other_classes(tiny, tmp_path):
    result = promptkit("compare", *tiny.synth, "--classes", "a,b,c,d,e,f,g", "--template", "photo_of",
                       "--run", tiny.run, "--out", tmp_path / "cmp")
    assert_one_error_line(result, "trained on 7 classes", "same class set")


def test_template_without_class_variable(tiny, tmp_path):
    bad = tmp_path / "same_for_all.j2"
    bad.write_text("a photo of a face.\n")
    result = promptkit("compare", *tiny.synth, "--template", bad, "--out", tmp_path / "cmp")
    assert_one_error_line(result, str(bad), "class_name")


def test_descriptions_for_another_class_set(tiny, tmp_path):
    result = promptkit("compare", *tiny.synth, "--classes", "dfew", "--descriptions", "mafw/v1", "--template", "description",
                       "--out", tmp_path / "cmp")
    assert_one_error_line(result, "mafw/v1", "dfew")


def test_train_needs_a_train_list(tiny, tmp_path):
    test_list = tmp_path / "test.txt"
    test_list.write_text("")
    result = promptkit("compare", "--test-list", test_list, "--train", "--out", tmp_path / "cmp")
    assert_one_error_line(result, "--train needs --train-list")


def test_random_words_row_is_the_description_template_over_random_words(tiny, tmp_path):
    out = tmp_path / "cmp"
    result = promptkit("compare", *tiny.synth, "--template", "description", "--template", "random_words", "--out", out)
    assert result.code == 0, result.err
    rows = read_rows(out / "compare.csv")
    assert [r["variant"] for r in rows] == ["description", "random_words"]
    assert "random words seed 1" in rows[1]["source"] and "cheeks raised" not in rows[1]["texts"]
    texts = [json.loads((out / "compare.json").read_text())["rows"][i]["texts"] for i in (0, 1)]
    assert texts[0] != texts[1]


def test_negatives_and_multi_descriptions_rows_from_a_set_that_has_them(tiny, tmp_path):
    out = tmp_path / "cmp"
    templates = ["--template", "description", "--template", "negatives", "--template", "multi_descriptions"]
    result = promptkit("compare", *tiny.synth, "--descriptions", "dfew/v2", *templates, "--out", out)
    assert result.code == 0, result.err
    rows = json.loads((out / "compare.json").read_text())["rows"]
    assert [r["variant"] for r in rows] == ["description", "negatives", "multi_descriptions"]
    assert "description + negatives" in rows[1]["source"] and "description + multi_descriptions" in rows[2]["source"]
    assert rows[1]["confusion"] != rows[0]["confusion"] or rows[2]["confusion"] != rows[0]["confusion"]
    # with a zero weight the negatives change nothing: the row is the description row
    zero = tmp_path / "zero"
    result = promptkit("compare", *tiny.synth, "--descriptions", "dfew/v2", "--template", "description", "--template",
                       "negatives", "--set", "model.negative_weight=0", "--out", zero)
    assert result.code == 0, result.err
    plain, negatives = json.loads((zero / "compare.json").read_text())["rows"]
    assert negatives["confusion"] == plain["confusion"] and negatives["uar"] == plain["uar"]


def test_negatives_row_with_a_set_without_negatives_is_one_line(tiny, tmp_path):
    result = promptkit("compare", *tiny.synth, "--descriptions", "dfew/v1", "--template", "negatives", "--out", tmp_path / "c")
    assert_one_error_line(result, "--negatives: set dfew/v1 has no negative descriptions")


def test_compare_table_keeps_whole_columns_at_80_columns():
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from trainer.commands.eval_cmds import compare_table

    classes = ["happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear"]
    row = SimpleNamespace(variant="expression_of", kind="zero-shot", uar=15.0, war=15.0, recall=dict.fromkeys(classes, 10.0))
    result = SimpleNamespace(class_set="dfew", n_clips=140, test_list="t.txt", classes=classes, rows=[row])
    for width, per_class in ((80, False), (200, True)):
        buffer = io.StringIO()
        Console(file=buffer, width=width).print(compare_table(result, width))
        text = buffer.getvalue()
        assert "…" not in text and all(len(line) <= width for line in text.splitlines())
        assert ("surprise" in text) == per_class and ("per-class recall: in the CSV" in text) != per_class
