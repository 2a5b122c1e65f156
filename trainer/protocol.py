"""The paper's evaluation protocol: every fold x every seed, then mean ± std.

DFEW and MAFW are reported as the mean over 5 folds, FERV39k on its single split, each number the
mean of 3 seeds. `plan_protocol` expands one RunConfig into sub-runs `fold{k}_seed{s}/` under the
run folder; `run_protocol` runs them in turn, skipping sub-runs that already have `summary.json`
(so an interrupted protocol resumes where it stopped; a sub-run with only `last.pt` resumes it).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from trainer.config import FOLDS_PER_DATASET, ConfigError, RunConfig
from trainer.report import protocol_rows, write_json, write_protocol_csv


@dataclass(frozen=True)
class SubRun:
    """One (fold, seed) run of a protocol and the folder it writes to."""

    fold: int
    seed: int
    run_dir: Path
    config: RunConfig


def parse_folds(spec: str | None, dataset: str | None) -> list[int] | None:
    """`None` -> None (the config's fold); `all` -> every fold of the dataset; `1` or `1,3` -> those."""
    if spec is None:
        return None
    text = str(spec).strip().lower()
    n_folds = FOLDS_PER_DATASET.get(dataset or "", None)
    if text == "all":
        if n_folds is None:
            raise ConfigError("--fold all needs --dataset dfew|ferv39k|mafw (lists given by hand have no folds)")
        return list(range(1, n_folds + 1))
    try:
        folds = [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise ConfigError(f"--fold takes 1..5, a comma list or 'all'; got {spec!r}") from None
    if not folds:
        raise ConfigError(f"--fold takes 1..5, a comma list or 'all'; got {spec!r}")
    if dataset is None and folds != [1]:
        raise ConfigError(f"--fold {spec} needs --dataset dfew|ferv39k|mafw")
    for fold in folds:
        if n_folds is not None and not 1 <= fold <= n_folds:
            raise ConfigError(f"{dataset} has folds 1..{n_folds}; got --fold {fold}")
    return folds


def plan_protocol(config: RunConfig, run_dir: Path, folds: Sequence[int] | None,
                  seeds: Sequence[int] | None) -> list[SubRun]:
    """Sub-runs for every (fold, seed); a single (fold, seed) runs straight in `run_dir`."""
    fold_list = list(folds) if folds else [config.data.fold]
    seed_list = list(seeds) if seeds else [config.seed]
    if len(set(seed_list)) != len(seed_list) or len(set(fold_list)) != len(fold_list):
        raise ConfigError(f"folds and seeds must not repeat; got folds {fold_list}, seeds {seed_list}")
    single = len(fold_list) == 1 and len(seed_list) == 1
    plan = []
    for fold in fold_list:
        for seed in seed_list:
            data = dataclasses.replace(config.data, fold=fold)
            sub_config = dataclasses.replace(config, data=data, seed=seed)
            sub_dir = run_dir if single else run_dir / f"fold{fold}_seed{seed}"
            plan.append(SubRun(fold, seed, sub_dir, sub_config))
    return plan


def run_protocol(plan: Sequence[SubRun], run_one: Callable[[SubRun], dict], run_dir: Path,
                 write: bool = True) -> list[dict]:
    """Run each sub-run (skipping finished ones), then write protocol.csv / protocol.json.

    `run_one(sub)` trains and returns the sub-run's summary (with `uar`, `war`).
    Returns one result per sub-run: `{"fold", "seed", "uar", "war", "run_dir", "skipped"}`.
    """
    results = []
    for sub in plan:
        summary_path = sub.run_dir / "summary.json"
        if len(plan) > 1 and summary_path.is_file():
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
            skipped = True
        else:
            summary = run_one(sub)
            skipped = False
        results.append({"fold": sub.fold, "seed": sub.seed, "uar": summary["uar"], "war": summary["war"],
                        "run_dir": str(sub.run_dir), "skipped": skipped})
    if write and len(plan) > 1:
        write_protocol_csv(run_dir / "protocol.csv", results)
        rows, agg = protocol_rows(results)
        write_json(run_dir / "protocol.json", {"runs": rows, "mean_std": agg})
    return results
