"""The paper's evaluation protocol: every fold x every seed, then mean ± std.

DFEW and MAFW are reported as the mean over 5 folds, FERV39k on its single split, each number the
mean of 3 seeds. `plan_protocol` expands one RunConfig into sub-runs `fold{k}_seed{s}/` under the
run folder; `run_protocol` runs them in turn, skipping sub-runs that already have `summary.json`
(so an interrupted protocol resumes where it stopped; a sub-run with only `last.pt` resumes it).
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from promptkit.fileio import make_folder

from trainer.config import ConfigError, RunConfig, config_from_dict, load_config_file
from trainer.data.registry import DATASETS
from trainer.distributed import DistContext, barrier, broadcast_object
from trainer.engine import Trainer, seeded
from trainer.inputs import resolve_inputs, synthetic_dir
from trainer.report import protocol_rows, write_json, write_protocol_csv
from trainer.report_html import write_report
from trainer.tracking import check_logger
from trainer.world.aus import CLASSES as WORLD_CLASSES


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
    n_folds = DATASETS[dataset].folds if dataset in DATASETS else None
    if text == "all":
        if n_folds is None:
            raise ConfigError(f"--fold all needs --dataset {'|'.join(DATASETS)} (lists given by hand have no folds)")
        return list(range(1, n_folds + 1))
    try:
        folds = [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise ConfigError(f"--fold takes 1..5, a comma list or 'all'; got {spec!r}") from None
    if not folds:
        raise ConfigError(f"--fold takes 1..5, a comma list or 'all'; got {spec!r}")
    if dataset is None and folds != [1]:
        raise ConfigError(f"--fold {spec} needs --dataset {'|'.join(DATASETS)}")
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
    Returns one result per sub-run: `{"fold", "seed", "uar", "war", "run_dir", "skipped"}` (fold
    None for a run from list files, which have no folds).
    """
    results = []
    for sub in plan:
        summary_path = sub.run_dir / "summary.json"
        if len(plan) > 1 and summary_path.is_file():
            summary = _finished_summary(summary_path)
            skipped = True
        else:
            summary = run_one(sub)
            skipped = False
        fold = sub.fold if sub.config.data.dataset else None  # list files have no folds
        results.append({"fold": fold, "seed": sub.seed, "uar": summary["uar"], "war": summary["war"],
                        "run_dir": str(sub.run_dir), "skipped": skipped})
    if write and len(plan) > 1:
        write_protocol_csv(run_dir / "protocol.csv", results)
        rows, agg = protocol_rows(results)
        write_json(run_dir / "protocol.json", {"runs": rows, "mean_std": agg})
    return results


def _finished_summary(path: Path) -> dict:
    """A finished sub-run's summary.json (with `uar` and `war`); a broken one is a ConfigError."""
    summary = load_config_file(path, "summary file")
    if not all(isinstance(summary.get(key), (int, float)) for key in ("uar", "war")):
        raise ConfigError(f"summary file {path} has no numeric uar / war; delete it to run that sub-run again")
    return summary


RUN_DIRS = ("tensorboard", "wandb", "mlruns")  # logger folders (trainer.tracking)
RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "summary.json", "config.json", "confusion.csv",
             "confusion.png", "curves.png", "protocol.csv", "protocol.json", "plan.json", "report.html")


def prepare_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse an existing, non-empty run folder unless resuming or overwriting (which removes only
    the files a run writes, and its fold*_seed* sub-runs)."""
    check_run_dir(run_dir, resume=resume, overwrite=overwrite)
    if resume:
        return
    try:
        if run_dir.is_dir() and any(run_dir.iterdir()):
            _clear_run(run_dir)
        make_folder(run_dir)
    except OSError as exc:  # a file on the way, no permission, ...
        raise ConfigError(f"cannot create the run folder {run_dir}: {exc.strerror or exc}; choose another --out") from None


def check_run_dir(run_dir: Path, *, resume: bool, overwrite: bool) -> None:
    """The checks of `prepare_run_dir`, without touching anything."""
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other; pick one")
    if resume:
        if not (run_dir / "config.json").is_file():
            raise ConfigError(f"nothing to resume in {run_dir}: it has no config.json from an earlier run")
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"output path {run_dir} exists and is not a folder; choose another --out")
    if run_dir.is_dir() and any(run_dir.iterdir()) and not overwrite:
        raise ConfigError(f"output folder {run_dir} already exists; pass --resume to continue it, "
                          "--overwrite to replace it, or choose another --out")


def _clear_run(run_dir: Path) -> None:
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)
    for name in RUN_DIRS:
        if (run_dir / name).is_dir():
            shutil.rmtree(run_dir / name)
    for sub in run_dir.glob("fold*_seed*"):
        if sub.is_dir():
            shutil.rmtree(sub)


def load_run_spec(run_dir: Path) -> tuple[RunConfig, list[int] | None, list[int] | None]:
    """The config and (folds, seeds) plan an earlier `trainer run` saved in `run_dir` (for --resume)."""
    if not (run_dir / "config.json").is_file():
        raise ConfigError(f"nothing to resume in {run_dir}: it has no config.json from an earlier `trainer run`")
    config = config_from_dict(load_config_file(run_dir / "config.json"))
    plan_path = run_dir / "plan.json"
    if not plan_path.is_file():
        return config, None, None
    plan = load_config_file(plan_path, "plan file")
    return config, plan.get("folds"), plan.get("seeds")


def train_one(sub: SubRun, ctx, progress=None, resume: bool = False) -> dict:
    """Train one (fold, seed) into its folder; resume from its last.pt when asked and present."""
    config = sub.config
    with seeded(config.seed, config.deterministic):
        if ctx.is_main:
            sub.run_dir.mkdir(parents=True, exist_ok=True)
            if progress is not None and config.data.synthetic and not (synthetic_dir(config) / "synthetic.json").is_file():
                data = config.data
                progress.note(f"rendering the synthetic face world once into {synthetic_dir(config)} "
                              f"({len(WORLD_CLASSES) * (data.synth_train_per_class + data.synth_test_per_class)} clips; "
                              "under a minute on 2 idle cores, cached for later runs)")
            inputs = resolve_inputs(config)
        barrier(ctx)
        if not ctx.is_main:
            inputs = resolve_inputs(config, write_synthetic=False)
        trainer = Trainer(config, inputs, sub.run_dir, ctx, progress)
        last = sub.run_dir / "last.pt"
        if resume and last.is_file():
            trainer.restore(last)
            if ctx.is_main and progress is not None:
                progress.note(f"resuming {last} at epoch {trainer.state['epoch'] + 1}, "
                              f"step {trainer.state['step_in_epoch']}")
        elif resume and ctx.is_main and progress is not None:
            progress.note(f"--resume: {sub.run_dir} has no last.pt (no checkpoint was saved yet); "
                          "this run starts from its first epoch")
        if ctx.is_main:
            write_json(sub.run_dir / "config.json", config.to_dict())
            if progress is not None and hasattr(progress, "run_start"):
                progress.run_start(config.to_dict(), sub.run_dir)
        return trainer.fit()


def start_run(config: RunConfig, run_dir: Path, folds: Sequence[int] | None = None,
              seeds: Sequence[int] | None = None, *, resume: bool = False, overwrite: bool = False,
              ctx=None, progress=None) -> list[dict]:
    """`trainer run`: prepare the folder, save config + plan, run every (fold, seed); return results.
    Every finished run and the protocol get their report.html (`trainer.report_html`)."""
    ctx = ctx or DistContext()
    check_logger(config.logger)  # a missing logger package: one error before anything is written
    problem = None
    existed = run_dir.exists()
    fresh = not resume and not (existed and any(run_dir.iterdir()))
    if ctx.is_main:
        try:
            prepare_run_dir(run_dir, resume=resume, overwrite=overwrite)
        except ConfigError as exc:
            problem = str(exc)
    problem = broadcast_object(problem, ctx)
    if problem:
        raise ConfigError(problem)
    plan = plan_protocol(config, run_dir, folds, seeds)
    if ctx.is_main and not resume:
        write_json(run_dir / "config.json", config.to_dict())
        write_json(run_dir / "plan.json", {"folds": list(folds) if folds else None,
                                           "seeds": list(seeds) if seeds else None})

    def run_one(sub: SubRun) -> dict:
        if progress is not None and len(plan) > 1 and ctx.is_main:
            progress.note(f"fold {sub.fold}, seed {sub.seed} -> {sub.run_dir}")
        summary = train_one(sub, ctx, progress, resume=resume)
        if ctx.is_main:
            write_report(sub.run_dir)  # report.html of the finished run
        return summary

    try:
        results = run_protocol(plan, run_one, run_dir, write=ctx.is_main)
    except KeyboardInterrupt:
        # what was written stays: --resume continues from a checkpoint, or starts over without one
        raise KeyboardInterrupt(_kept_after_interrupt(run_dir)) from None
    except BaseException:
        if ctx.is_main and fresh:
            _forget_unstarted_run(run_dir, keep_folder=existed)
        raise
    if ctx.is_main and len(plan) > 1:
        write_report(run_dir)  # the protocol's page: folds x seeds, mean ± std, the paper's numbers
    return results


def _kept_after_interrupt(run_dir: Path) -> str:
    """What an interrupted run left, and how to continue it."""
    lasts = sorted(run_dir.rglob("last.pt"))
    how = ("continues it from its last checkpoint" if lasts
           else "starts it over from its first epoch (no checkpoint had been saved yet)")
    return f"the run folder {run_dir} is kept; `trainer run --out {run_dir} --resume` {how}"


def _forget_unstarted_run(run_dir: Path, keep_folder: bool) -> None:
    """A new run that failed before its first checkpoint (missing weights, bad data, ...) leaves no
    folder behind, so the corrected command can be run again as it was; one with a checkpoint stays
    for --resume."""
    if any(run_dir.rglob("last.pt")):
        return
    _clear_run(run_dir)
    for folder in sorted((p for p in run_dir.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
    if not keep_folder and not any(run_dir.iterdir()):
        run_dir.rmdir()
