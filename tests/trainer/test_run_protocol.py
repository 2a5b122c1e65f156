"""Protocol planning (folds x seeds), skipping finished sub-runs, and the run-folder rules."""

from __future__ import annotations

import json

import pytest

from trainer.config import ConfigError, resolve_config
from trainer.protocol import parse_folds, plan_protocol, prepare_run_dir, run_protocol


def test_parse_folds():
    assert parse_folds(None, "dfew") is None
    assert parse_folds("all", "dfew") == [1, 2, 3, 4, 5]
    assert parse_folds("all", "ferv39k") == [1]
    assert parse_folds("2,4", "mafw") == [2, 4]
    with pytest.raises(ConfigError, match="needs --dataset"):
        parse_folds("all", None)
    with pytest.raises(ConfigError, match="folds 1..5"):
        parse_folds("6", "dfew")
    with pytest.raises(ConfigError, match="'x'"):
        parse_folds("x", "dfew")


def test_plan_names_sub_runs(tmp_path):
    cfg = resolve_config("dfew", options={"data": {"data_root": "/d"}})
    plan = plan_protocol(cfg, tmp_path, [1, 2], [1, 2, 3])
    assert [(s.fold, s.seed) for s in plan] == [(f, s) for f in (1, 2) for s in (1, 2, 3)]
    assert plan[4].run_dir == tmp_path / "fold2_seed2"
    assert plan[4].config.data.fold == 2 and plan[4].config.seed == 2
    single = plan_protocol(cfg, tmp_path, None, None)
    assert len(single) == 1 and single[0].run_dir == tmp_path


def test_run_protocol_skips_finished_sub_runs_and_writes_the_table(tmp_path):
    cfg = resolve_config("mafw", options={"data": {"data_root": "/d"}})
    plan = plan_protocol(cfg, tmp_path, [1, 2], [7])
    (tmp_path / "fold1_seed7").mkdir()
    (tmp_path / "fold1_seed7" / "summary.json").write_text(json.dumps({"uar": 30.0, "war": 40.0}))
    ran = []

    def run_one(sub):
        ran.append((sub.fold, sub.seed))
        return {"uar": 50.0, "war": 60.0}

    results = run_protocol(plan, run_one, tmp_path)
    assert ran == [(2, 7)]
    assert [r["skipped"] for r in results] == [True, False]
    table = json.loads((tmp_path / "protocol.json").read_text())
    assert table["mean_std"]["uar"]["mean"] == pytest.approx(40.0)
    assert (tmp_path / "protocol.csv").read_text().startswith("fold,seed,uar,war\n1,7,30.0000,40.0000\n")


def test_existing_output_folder_is_refused_unless_resume_or_overwrite(tmp_path):
    run = tmp_path / "run"
    prepare_run_dir(run, resume=False, overwrite=False)  # new: created
    (run / "metrics.jsonl").write_text("{}\n")
    (run / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already exists; pass --resume"):
        prepare_run_dir(run, resume=False, overwrite=False)
    with pytest.raises(ConfigError, match="nothing to resume"):
        prepare_run_dir(run, resume=True, overwrite=False)
    prepare_run_dir(run, resume=False, overwrite=True)
    assert not (run / "metrics.jsonl").exists() and (run / "notes.txt").exists()  # only run files go
    with pytest.raises(ConfigError, match="exclude each other"):
        prepare_run_dir(run, resume=True, overwrite=True)


def test_broken_saved_files_are_one_config_error(tmp_path):
    from trainer.protocol import load_run_spec

    cfg = resolve_config("mafw", options={"data": {"data_root": "/d"}})
    plan = plan_protocol(cfg, tmp_path, [1, 2], [7])
    (tmp_path / "fold1_seed7").mkdir()
    (tmp_path / "fold1_seed7" / "summary.json").write_text('{"uar": 30.0')  # cut short
    with pytest.raises(ConfigError, match="summary file .* not valid JSON"):
        run_protocol(plan, lambda sub: {"uar": 1.0, "war": 1.0}, tmp_path)
    (tmp_path / "fold1_seed7" / "summary.json").write_text('{"war": 40.0}')
    with pytest.raises(ConfigError, match="no numeric uar"):
        run_protocol(plan, lambda sub: {"uar": 1.0, "war": 1.0}, tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_dict()))
    (tmp_path / "plan.json").write_text("[1,")
    with pytest.raises(ConfigError, match="plan file .* not valid JSON"):
        load_run_spec(tmp_path)
