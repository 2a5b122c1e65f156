"""`trainer run | eval | predict` end to end through the CLI on generated clips (tiny model, CPU)."""

from __future__ import annotations

import json

import pytest
import torch
from cli_runner import trainer_cli as cli

import trainer
from trainer.cli import main


def base_args(clips, out, epochs=2):
    train, test = clips
    return ["run", "--train-list", train, "--test-list", test, "--epochs", epochs, "--batch", 7, "--frames", 4,
            "--workers", 0, "--device", "cpu", "--quiet", "--out", out]


@pytest.fixture(scope="module")
def finished_run(clips, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "r"
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in base_args(clips, out)])
    assert info.value.code == 0
    return out


def test_run_writes_the_run_folder(finished_run):
    out = finished_run
    for name in ("config.json", "last.pt", "best.pt", "metrics.jsonl", "summary.json", "confusion.csv",
                 "confusion.png", "curves.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert 0 <= summary["uar"] <= 100 and 0 <= summary["war"] <= 100
    assert summary["selection"] == "last epoch" and summary["selected_epoch"] == 2
    assert summary["text"]["set_id"] == "dfew/v1" and summary["text"]["content_hash"].startswith("sha256:")
    assert summary["n_test"] == 7 and len(summary["per_class_recall"]) == 7
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert lines[-1]["test"]["war"] == summary["war"] and set(lines[0]["lr"]) >= {"image", "temporal", "prompt"}
    config = json.loads((out / "config.json").read_text())
    assert config["optim"]["epochs"] == 2 and config["data"]["num_segments"] == 4
    assert (out / "confusion.csv").read_text().splitlines()[0].split(",")[1:] == summary["classes"]


def test_checkpoints_carry_what_a_rebuild_needs(finished_run):
    best = torch.load(finished_run / "best.pt", weights_only=True)
    last = torch.load(finished_run / "last.pt", weights_only=True)
    for state in (best, last):
        assert state["format"] == "dferclip-toolkit" and state["classes"][0] == "happiness"
        assert state["text"]["set_id"] == "dfew/v1" and state["preprocessing"]["num_segments"] == 4
        assert state["run_config"]["optim"]["batch"] == 7
    assert last["kind"] == "run" and last["epoch"] == 2 and {"optimizer", "scheduler", "rng"} <= set(last)
    model = trainer.load_model(finished_run / "best.pt")
    assert not model.training and model.texts.classes[0] == "happiness"
    assert model.classes == tuple(model.texts.classes) and len(model.classes) == 7


def test_eval_and_predict(finished_run, clips, capsys, tmp_path):
    summary = json.loads((finished_run / "summary.json").read_text())
    code, out, err = cli(capsys, "eval", finished_run / "best.pt", "--test-list", clips[1], "--workers", 0,
                         "--device", "cpu", "--out", tmp_path / "e.json")
    assert code == 0 and "UAR" in out
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["uar"] == pytest.approx(summary["uar"]) and result["war"] == pytest.approx(summary["war"])
    clip = clips[1].read_text().split()[0]
    code, out, err = cli(capsys, "predict", finished_run / "best.pt", clip, "--json", "--device", "cpu")
    assert code == 0
    rows = json.loads(out)
    assert rows[0]["clip"] == clip and sum(rows[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert rows[0]["prediction"] in rows[0]["probabilities"]


def test_existing_output_folder_is_refused(finished_run, clips, capsys):
    code, out, err = cli(capsys, *base_args(clips, finished_run))
    assert code == 1
    assert err.strip().count("\n") == 0 and err.startswith("error: output folder") and "--overwrite" in err


def _one_line_error(capsys, argv, *words, alone=True):
    """Exit non-zero with one `error: ...` line (and, for input errors, nothing else on stderr)."""
    code, out, err = cli(capsys, *argv)
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    if alone:
        assert len(lines) == 1, err
    for word in words:
        assert word in errors[0], errors[0]


def test_bad_inputs_give_one_line(clips, capsys, tmp_path):
    train, test = clips
    args = base_args(clips, tmp_path / "a")
    missing = [a if a != train else tmp_path / "nope.txt" for a in args]
    _one_line_error(capsys, missing, "annotation file not found", "nope.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text(train.read_text().splitlines()[0].rsplit(" ", 1)[0] + " 9\n")
    _one_line_error(capsys, [a if a != train else bad for a in base_args(clips, tmp_path / "b")],
                    "bad.txt:1", "label 9 is out of range")
    # texts written for another class set (--classes alone now takes that class set's own texts)
    _one_line_error(capsys, [*base_args(clips, tmp_path / "c"), "--classes", "mafw", "--descriptions", "dfew/v1"],
                    "7 classes", "11")
    _one_line_error(capsys, [*base_args(clips, tmp_path / "d"), "--batch", 64], "fewer than one batch")
    _one_line_error(capsys, [*base_args(clips, tmp_path / "e"), "--set", "optim.lr_image=fast"], "optim.lr_image")
    _one_line_error(capsys, ["eval", tmp_path / "none.pt", "--test-list", test], "none.pt")
    (tmp_path / "afile").write_text("")
    _one_line_error(capsys, base_args(clips, tmp_path / "afile" / "run"), "cannot create the run folder")


def test_unwritable_eval_output_gives_one_line(finished_run, clips, capsys, tmp_path):
    (tmp_path / "taken").mkdir()  # a folder where the JSON file should go
    _one_line_error(capsys, ["eval", finished_run / "best.pt", "--test-list", clips[1], "--workers", 0,
                             "--device", "cpu", "--out", tmp_path / "taken"], "cannot write", "taken", alone=False)


def test_a_run_that_fails_before_training_leaves_no_folder_to_refuse(clips, capsys, tmp_path):
    train, _ = clips
    bad = tmp_path / "bad.txt"
    bad.write_text(train.read_text().splitlines()[0].rsplit(" ", 1)[0] + " 9\n")
    argv = [a if a != train else bad for a in base_args(clips, tmp_path / "run")]
    for _ in range(2):  # the same command again gives the same error, not "folder already exists"
        _one_line_error(capsys, argv, "label 9 is out of range")
    assert not (tmp_path / "run").exists()


def test_select_val_holds_out_part_of_train(clips, tmp_path, capsys):
    out = tmp_path / "v"
    code, _, err = cli(capsys, *base_args(clips, out, epochs=1), "--select", "val", "--val-fraction", "0.5",
                       "--batch", 6, "--text", "classnames")
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["selection"].startswith("best validation WAR") and "val" in summary
    record = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert sum(map(sum, record["val"]["confusion"])) == 7  # one of the two clips per class
    assert (out / "best.pt").is_file()


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(clips, tmp_path, capsys, monkeypatch):
    import torch.nn.functional as F

    real = F.cross_entropy
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(F, "cross_entropy", flaky)
    out = tmp_path / "n"
    argv = [*base_args(clips, out, epochs=1), "--batch", 2, "--ckpt-every-steps", 1, "--text", "classnames"]
    _one_line_error(capsys, argv, "epoch 1 step 3", "last.pt", alone=False)
    state = torch.load(out / "last.pt", weights_only=True)
    assert (state["epoch"], state["step_in_epoch"]) == (0, 2)


@pytest.mark.parametrize("flag, value", [("--lr-image", "nan"), ("--mixup", "inf"), ("--mixup", "nan"),
                                         ("--set", "optim.lr_prompt=-inf"), ("--set", "model.negative_weight=nan")])
def test_a_non_finite_number_is_refused_before_anything_is_written(clips, capsys, tmp_path, flag, value):
    out = tmp_path / "r"
    code, _, err = cli(capsys, *base_args(clips, out, epochs=1), flag, value)
    assert code != 0 and "must be a finite number" in err and "Traceback" not in err
    assert not (out / "best.pt").exists() and not (out / "last.pt").exists()


def test_a_diverging_run_names_what_it_kept(clips, capsys, tmp_path):
    out = tmp_path / "r"
    code, _, err = cli(capsys, *base_args(clips, out, epochs=1), "--lr-temporal", "1e30", "--lr-prompt", "1e30",
                       "--lr-image", "1e30", "--set", "optim.clip_grad=null", "--set", "optim.momentum=0")
    assert code != 0 and "loss became" in err
    if (out / "last.pt").exists():
        assert "from before is kept" in err
    else:
        assert "no checkpoint had been written yet" in err and "is kept" not in err


def test_ctrl_c_in_the_first_epoch_keeps_the_folder_and_resume_starts_over(clips, capsys, tmp_path, monkeypatch):
    from trainer.engine import Trainer

    def interrupted(self, frames, labels, index=None):
        raise KeyboardInterrupt

    out = tmp_path / "r"
    real = Trainer._step
    monkeypatch.setattr(Trainer, "_step", interrupted)
    code, _, err = cli(capsys, *base_args(clips, out, epochs=1))
    assert code == 130 and f"the run folder {out} is kept" in err and "starts it over from its first epoch" in err
    assert (out / "config.json").is_file() and not (out / "last.pt").exists()
    monkeypatch.setattr(Trainer, "_step", real)
    code, _, err = cli(capsys, "run", "--out", out, "--resume", "--quiet")
    assert code == 0 and "has no last.pt" in err and (out / "summary.json").is_file()


def test_eval_of_a_run_defaults_to_its_recorded_test_list(finished_run, capsys, tmp_path):
    summary = json.loads((finished_run / "summary.json").read_text())
    code, out, err = cli(capsys, "eval", finished_run, "--workers", 0, "--device", "cpu", "--out", tmp_path / "e.json")
    assert code == 0, err
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["uar"] == pytest.approx(summary["uar"]) and result["n_clips"] == summary["n_test"]
    state = torch.load(finished_run / "best.pt", weights_only=True)
    state["run_config"]["data"]["test_list"] = str(tmp_path / "gone.txt")
    torch.save(state, tmp_path / "moved.pt")
    code, _, err = cli(capsys, "eval", tmp_path / "moved.pt", "--device", "cpu")
    assert code == 1 and "gone.txt" in err and "pass --test-list" in err and "Traceback" not in err


def test_a_run_logged_to_a_file_shows_progress_and_a_short_config(clips, capsys, tmp_path):
    args = [a for a in base_args(clips, tmp_path / "r", epochs=1) if a != "--quiet"]
    code, _, err = cli(capsys, *args)
    assert code == 0, err
    assert "epoch 1/1 step 1/" in err and "clips/s" in err and "ETA" in err
    assert "evaluating test: batch" in err
    assert f"full config: {tmp_path / 'r' / 'config.json'}" in err
    assert len(err.splitlines()) < 20 and '"lr_temporal"' not in err


def test_info_of_a_run_shows_its_epoch_and_metrics(finished_run, capsys):
    summary = json.loads((finished_run / "summary.json").read_text())
    code, out, err = cli(capsys, "info", finished_run, "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["epoch"] == 2 and info["kind"] == "model"
    assert info["metrics"]["test"]["uar"] == pytest.approx(summary["uar"])
    code, out, _ = cli(capsys, "info", finished_run / "last.pt")
    assert code == 0 and "saved at epoch 2: test UAR" in out


def test_eval_logged_to_a_file_shows_its_progress(finished_run, clips, capsys):
    code, _, err = cli(capsys, "eval", finished_run, "--test-list", clips[1], "--workers", 0, "--device", "cpu")
    assert code == 0 and f"evaluating {clips[1]}: batch 1/1" in err


def test_tables_stay_whole_at_80_columns(finished_run, clips, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    clip_paths = [line.split()[0] for line in clips[1].read_text().splitlines()[:3]]
    for argv in (["predict", finished_run, *clip_paths, "--device", "cpu"],
                 ["eval", finished_run, "--test-list", clips[1], "--workers", 0, "--device", "cpu"],
                 ["info", finished_run], ["run", "--help"]):
        code, out, err = cli(capsys, *argv)
        assert code == 0, err
        assert "…" not in out and all(len(line) <= 80 for line in out.splitlines()), out
    code, out, _ = cli(capsys, "predict", finished_run, *clip_paths, "--device", "cpu")
    assert all(name in out for name in ("happiness", "sadness", "surprise", "disgust"))


def test_a_run_checkpointed_before_the_content_hash_change_still_resumes(clips, capsys, tmp_path, monkeypatch):
    from promptkit.store import Store

    from trainer.engine import Trainer

    shipped = Store(tmp_path / "store").resolve("dfew/v1")
    assert len(shipped.known_hashes) == 2  # its content hash, and the hash its version 1 file stores
    real, calls = Trainer._step, []

    def interrupted(self, frames, labels, index=None):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, frames, labels, index)

    out = tmp_path / "r"
    monkeypatch.setattr(Trainer, "_step", interrupted)
    assert cli(capsys, *base_args(clips, out, epochs=1), "--ckpt-every-steps", 1)[0] == 130
    monkeypatch.setattr(Trainer, "_step", real)
    state = torch.load(out / "last.pt", weights_only=True)
    for stored, code in (("sha256:" + "0" * 64, 1), (shipped.record_hash, 0)):
        state["text"]["content_hash"] = stored  # another set's, then as a run of an earlier release recorded it
        torch.save(state, out / "last.pt")
        status, _, err = cli(capsys, "run", "--out", out, "--resume", "--quiet")
        assert status == code, err
        assert ("other class texts" in err) == bool(code)
    assert (out / "summary.json").is_file()
