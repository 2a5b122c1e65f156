"""Rich rendering for the run commands: progress bars (or one quiet line per epoch) and tables."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from trainer.config import RunConfig
from trainer.declare import declared
from trainer.report import protocol_rows


def _lr_text(lrs: dict[str, float]) -> str:
    return " ".join(f"{name[:1]}{lr:.0e}" for name, lr in lrs.items())  # i1e-05 t1e-02 p1e-03


def epoch_line(rec: dict[str, Any], epochs: int | None = None) -> str:
    """`epoch 3/12  loss 1.234  test UAR 45.1 WAR 50.2  val ...  95 clips/s`."""
    head = f"epoch {rec['epoch']}" + (f"/{epochs}" if epochs else "")
    parts = [head, f"loss {rec['train_loss']:.4f}"]
    for split in ("test", "val"):
        if split in rec:
            parts.append(f"{split} UAR {rec[split]['uar']:.2f} WAR {rec[split]['war']:.2f}")
    parts.append(f"{rec.get('train_clips_per_s', 0):.1f} clips/s")
    return "  ".join(parts)


def config_summary(config: dict[str, Any], run_dir: Path) -> list[str]:
    """A few lines saying what a run computes; the whole resolved config is in the run folder."""
    model, data, optim, text = config["model"], config["data"], config["optim"], config["text"]
    if data.get("dataset"):
        source = f"{data['dataset']} fold {data['fold']} under {data['data_root']}"
    elif data.get("train_list"):
        source = f"{data['train_list']} -> {data['test_list']}"
    else:
        source = (f"the synthetic face world ({data['synth_train_per_class']}/{data['synth_test_per_class']} "
                  f"clips per class, {data['synth_style']})")
    words = text["source"] if text["source"] != "descriptions" else f"descriptions {text['descriptions']}"
    switches = []  # the method switches declared for the summary that are not at their defaults
    for spec in declared(RunConfig):
        value = spec.value(config)
        if spec.switch.summary and value != spec.default:
            switches.append(spec.switch.label if isinstance(value, bool) else f"{spec.switch.label} {value}")
    return [
        f"run {run_dir} (preset {config['preset']}, seed {config['seed']}, {config['precision']})",
        f"  model   {model['backbone']} ({model.get('pretrained') or 'random weights'}), {data['num_segments']} frames, "
        f"{model.get('n_ctx')} context tokens",
        f"  data    {source}",
        f"  texts   {words}" + (f"; {', '.join(switches)}" if switches else ""),
        f"  optim   {optim['optimizer']}, {optim['epochs']} epoch{'' if optim['epochs'] == 1 else 's'}, batch {optim['batch']}, lr image "
        f"{optim['lr_image']:g} temporal {optim['lr_temporal']:g} prompt {optim['lr_prompt']:g}; select {config['select']}",
        f"  full config: {run_dir / 'config.json'}",
    ]


class QuietProgress:
    """For logs: one line per epoch and the notes, nothing per step."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.epochs: int | None = None

    def __enter__(self) -> "QuietProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run_start(self, config: dict[str, Any], run_dir: Path) -> None:
        for line in config_summary(config, run_dir):
            self.console.print(line, highlight=False, soft_wrap=True)

    def epoch_start(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        self.epochs = epochs

    def step(self, clips: int, loss: float, lrs: dict[str, float]) -> None:
        pass

    def evaluating(self, split: str, done: int, total: int) -> None:
        pass

    def epoch_end(self, record: dict[str, Any]) -> None:
        self.console.print(f"{time.strftime('%H:%M:%S')} {epoch_line(record, self.epochs)}", highlight=False)

    def note(self, message: str) -> None:
        self.console.print(f"{time.strftime('%H:%M:%S')} {message}", highlight=False)


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class PlainProgress(QuietProgress):
    """When stderr is not a terminal (a log file, a pipe, CI): a progress line at most every
    `interval` seconds (epoch, step, clips/s, loss, ETA of the epoch), and evaluation progress."""

    def __init__(self, console: Console, interval: float = 10.0) -> None:
        super().__init__(console)
        self.interval = interval
        self._steps = self._done = self._clips = 0
        self._loss_sum, self._start, self._last = 0.0, 0.0, 0.0
        self._epoch = 0

    def _due(self) -> bool:
        now = time.perf_counter()
        if now - self._last < self.interval:
            return False
        self._last = now
        return True

    def epoch_start(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        self.epochs, self._epoch, self._steps, self._done = epochs, epoch, steps, done
        self._clips, self._loss_sum = 0, 0.0
        self._start = self._last = time.perf_counter()

    def step(self, clips: int, loss: float, lrs: dict[str, float]) -> None:
        self._done += 1
        self._clips += clips
        self._loss_sum += loss * clips
        if not self._due() and self._done != 1:
            return
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        per_step = elapsed / max(self._done, 1)
        self.note(f"epoch {self._epoch}/{self.epochs} step {self._done}/{self._steps}  "
                  f"{self._clips / elapsed:.1f} clips/s  loss {self._loss_sum / max(self._clips, 1):.4f}  "
                  f"ETA {_clock(per_step * (self._steps - self._done))}")

    def evaluating(self, split: str, done: int, total: int) -> None:
        if done == total or self._due():
            self.note(f"evaluating {split}: batch {done}/{total}")


class RichProgress(QuietProgress):
    """A bar per epoch with clips/s, running loss, learning rates and ETA."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        # the numbers go in one text field, so an evaluation bar shows none and a narrow terminal
        # (80 columns) keeps the step count whole; the learning rates only where there is room
        self.wide = console.width >= 110
        self.bars = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(bar_width=None if self.wide else 16), MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"), TextColumn("ETA"), TimeRemainingColumn(), console=console,
        )
        self.task = None
        self.eval_task = None
        self._clips = 0
        self._loss_sum = 0.0
        self._start = 0.0

    def run_start(self, config: dict[str, Any], run_dir: Path) -> None:
        for line in config_summary(config, run_dir):
            self.bars.console.print(line, highlight=False, soft_wrap=True)

    def __enter__(self) -> "RichProgress":
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def epoch_start(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        self.epochs = epochs
        self.task = self.bars.add_task(f"epoch {epoch}/{epochs}", total=steps, completed=done, stats="")
        self._clips, self._loss_sum, self._start = 0, 0.0, time.perf_counter()

    def step(self, clips: int, loss: float, lrs: dict[str, float]) -> None:
        self._clips += clips
        self._loss_sum += loss * clips
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        stats = f"{self._clips / elapsed:6.1f} clips/s  loss {self._loss_sum / max(self._clips, 1):.4f}"
        self.bars.update(self.task, advance=1, stats=stats + (f"  lr {_lr_text(lrs)}" if self.wide else ""))

    def evaluating(self, split: str, done: int, total: int) -> None:
        if self.eval_task is None:
            self.eval_task = self.bars.add_task(f"evaluating {split}", total=total, stats="")
        self.bars.update(self.eval_task, completed=done)
        if done >= total:
            self.bars.remove_task(self.eval_task)
            self.eval_task = None

    def epoch_end(self, record: dict[str, Any]) -> None:
        if self.task is not None:
            self.bars.remove_task(self.task)
            self.task = None
        self.bars.console.print(epoch_line(record, self.epochs), highlight=False)

    def note(self, message: str) -> None:
        self.bars.console.print(message, highlight=False)


def make_progress(console: Console, quiet: bool) -> QuietProgress:
    """The run / compare progress: one line per epoch with --quiet, bars on a terminal, and a
    progress line every few seconds when stderr is a file or a pipe."""
    if quiet:
        return QuietProgress(console)
    return RichProgress(console) if console.is_terminal else PlainProgress(console)


class _TerminalBars:
    """A context that shows `self.bars` (a transient rich Progress) only on a terminal."""

    console: Console
    bars: Progress

    def __enter__(self):
        self._start = time.perf_counter()
        if self.console.is_terminal:
            self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.console.is_terminal:
            self.bars.stop()


class EvalProgress(_TerminalBars):
    """Progress of a standalone evaluation (`trainer eval`): a transient bar on a terminal, else a
    line at most every `interval` seconds; call it with (done, total) batches."""

    def __init__(self, console: Console, what: str, interval: float = 10.0) -> None:
        self.console, self.what, self.interval = console, what, interval
        self.bars = Progress(TextColumn(f"[bold]evaluating {what}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=True)
        self.task = None
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if self.console.is_terminal:
            if self.task is None:
                self.task = self.bars.add_task("eval", total=total)
            self.bars.update(self.task, completed=done)
        elif done == total or time.perf_counter() - self._last >= self.interval:
            self._last = time.perf_counter()
            self.console.print(f"{time.strftime('%H:%M:%S')} evaluating {self.what}: batch {done}/{total}", highlight=False)


class RateProgress(_TerminalBars):
    """Progress of many small jobs (`describe-clips`): a transient bar with the rate and ETA on a
    terminal, else a line at most every `interval` seconds; call it with (done, total)."""

    def __init__(self, console: Console, what: str, unit: str = "clips", interval: float = 10.0) -> None:
        self.console, self.what, self.unit, self.interval = console, what, unit, interval
        self.bars = Progress(TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                             TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=True)
        self.task = None
        self._start = self._last = 0.0

    def __enter__(self) -> "RateProgress":
        super().__enter__()
        self._last = self._start  # the first line after `interval`, not at 0 done
        return self

    def __call__(self, done: int, total: int) -> None:
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        rate = done / elapsed
        if self.console.is_terminal:
            if self.task is None:
                self.task = self.bars.add_task(self.what, total=total, rate="")
            self.bars.update(self.task, completed=done, rate=f"{rate:.2f} {self.unit}/s")
        elif done == total or time.perf_counter() - self._last >= self.interval:
            self._last = time.perf_counter()
            eta = _clock((total - done) / rate) if rate > 0 else "-"
            self.console.print(f"{time.strftime('%H:%M:%S')} {self.what}: {done}/{total} {self.unit}  "
                               f"{rate:.2f} {self.unit}/s  ETA {eta}", highlight=False)


def protocol_table(results: Sequence[dict[str, Any]], with_folds: bool = True) -> Table:
    """One row per (fold, seed) and, for several, a mean ± std row; no fold column for a run from
    list files (it has no folds)."""
    rows, agg = protocol_rows(results)
    table = Table(title="results")
    names = ("fold", "seed", "UAR %", "WAR %") if with_folds else ("seed", "UAR %", "WAR %")
    for name in names:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*([str(row["fold"])] if with_folds else []), str(row["seed"]), f"{row['uar']:.2f}",
                      f"{row['war']:.2f}")
    if len(rows) > 1:
        table.add_section()
        table.add_row(*(["mean ± std"] if with_folds else []), "" if with_folds else "mean ± std",
                      f"{agg['uar']['mean']:.2f} ± {agg['uar']['std']:.2f}",
                      f"{agg['war']['mean']:.2f} ± {agg['war']['std']:.2f}")
    return table


def eval_table(result: dict[str, Any]) -> Table:
    """Per-class recall, UAR and WAR; the paths are in `eval_heading` (titles would wrap mid-path)."""
    views = result.get("test_views", "1x1")
    views = "" if views == "1x1" else f", test views {views}"
    table = Table(title=f"{result['n_clips']} clips{views}")
    table.add_column("class")
    table.add_column("recall %", justify="right")
    for name, recall in result["per_class_recall"].items():
        table.add_row(name, "-" if recall is None else f"{recall:.2f}")
    table.add_section()
    table.add_row("UAR", f"{result['uar']:.2f}")
    table.add_row("WAR", f"{result['war']:.2f}")
    return table


def eval_heading(result: dict[str, Any]) -> list[str]:
    return [f"checkpoint: {result['checkpoint']}", f"test list:  {result['test_list']}"]


def predict_tables(result: Sequence[dict[str, Any]], width: int) -> list[Table]:
    """Per-class probabilities: one row per clip when that fits in `width` columns, else one row
    per class with the clips as numbered columns (a legend table names them), in as many tables
    as the width needs. Class names are never cut."""
    classes = list(result[0]["probabilities"]) if result else []
    cells = [max(len(c), 5) + 3 for c in classes]
    longest = max((len(c) for c in classes), default=5)
    faces = any("face_found" in row for row in result)  # --face-crop: was a face found and cropped?

    def face(row: dict[str, Any]) -> list[str]:
        return (["cropped" if row.get("face_found") else "not found"]) if faces else []

    if 24 + sum(cells) + longest + 3 + (12 if faces else 0) <= width:
        table = Table(title="per-class probabilities")
        table.add_column("clip", overflow="fold", min_width=20)
        for name in classes:
            table.add_column(name, justify="right", no_wrap=True)
        table.add_column("prediction", no_wrap=True)
        if faces:
            table.add_column("face", no_wrap=True)
        for row in result:
            table.add_row(row["clip"], *[f"{row['probabilities'][c]:.3f}" for c in classes], row["prediction"], *face(row))
        return [table]
    legend = Table(title="clips")
    legend.add_column("#", justify="right")
    legend.add_column("clip", overflow="fold")
    legend.add_column("prediction", no_wrap=True)
    if faces:
        legend.add_column("face", no_wrap=True)
    for i, row in enumerate(result, start=1):
        legend.add_row(str(i), row["clip"], row["prediction"], *face(row))
    per_table = max(1, (width - longest - 4) // 8)
    tables = [legend]
    for first in range(0, len(result), per_table):
        chunk = list(enumerate(result, start=1))[first:first + per_table]
        table = Table(title="per-class probabilities")
        table.add_column("class", no_wrap=True)
        for i, _ in chunk:
            table.add_column(f"#{i}", justify="right", no_wrap=True)
        for name in classes:
            table.add_row(name, *[f"{row['probabilities'][name]:.3f}" for _, row in chunk])
        tables.append(table)
    return tables
