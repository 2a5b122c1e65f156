"""Rich rendering for the run commands: progress bars (or one quiet line per epoch) and tables."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

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
        self.console.print(f"config ({run_dir}): {json.dumps(config)}", highlight=False, soft_wrap=True)

    def epoch_start(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        self.epochs = epochs

    def step(self, clips: int, loss: float, lrs: dict[str, float]) -> None:
        pass

    def epoch_end(self, record: dict[str, Any]) -> None:
        self.console.print(f"{time.strftime('%H:%M:%S')} {epoch_line(record, self.epochs)}", highlight=False)

    def note(self, message: str) -> None:
        self.console.print(f"{time.strftime('%H:%M:%S')} {message}", highlight=False)


class RichProgress(QuietProgress):
    """A bar per epoch with clips/s, running loss, learning rates and ETA."""

    def __init__(self, console: Console) -> None:
        super().__init__(console)
        self.bars = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>7.1f} clips/s"), TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("lr {task.fields[lr]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=console,
        )
        self.task = None
        self._clips = 0
        self._loss_sum = 0.0
        self._start = 0.0

    def run_start(self, config: dict[str, Any], run_dir: Path) -> None:
        self.bars.console.print(f"resolved config (saved to {run_dir / 'config.json'}):")
        self.bars.console.print_json(json.dumps(config))

    def __enter__(self) -> "RichProgress":
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def epoch_start(self, epoch: int, epochs: int, steps: int, done: int) -> None:
        self.epochs = epochs
        self.task = self.bars.add_task(f"epoch {epoch}/{epochs}", total=steps, completed=done,
                                       rate=0.0, loss=float("nan"), lr="")
        self._clips, self._loss_sum, self._start = 0, 0.0, time.perf_counter()

    def step(self, clips: int, loss: float, lrs: dict[str, float]) -> None:
        self._clips += clips
        self._loss_sum += loss * clips
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        self.bars.update(self.task, advance=1, rate=self._clips / elapsed,
                         loss=self._loss_sum / max(self._clips, 1), lr=_lr_text(lrs))

    def epoch_end(self, record: dict[str, Any]) -> None:
        if self.task is not None:
            self.bars.remove_task(self.task)
            self.task = None
        self.bars.console.print(epoch_line(record, self.epochs), highlight=False)

    def note(self, message: str) -> None:
        self.bars.console.print(message, highlight=False)


def protocol_table(results: Sequence[dict[str, Any]], run_dir: Path) -> Table:
    """One row per (fold, seed) and, for several, a mean ± std row."""
    rows, agg = protocol_rows(results)
    table = Table(title=f"results ({run_dir})")
    for name in ("fold", "seed", "UAR %", "WAR %"):
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row("-" if row["fold"] is None else str(row["fold"]), str(row["seed"]), f"{row['uar']:.2f}", f"{row['war']:.2f}")
    if len(rows) > 1:
        table.add_section()
        table.add_row("mean ± std", "", f"{agg['uar']['mean']:.2f} ± {agg['uar']['std']:.2f}",
                      f"{agg['war']['mean']:.2f} ± {agg['war']['std']:.2f}")
    return table


def eval_table(result: dict[str, Any]) -> Table:
    views = result.get("test_views", "1x1")
    views = "" if views == "1x1" else f", test views {views}"
    table = Table(title=f"{result['checkpoint']} on {result['test_list']} ({result['n_clips']} clips{views})")
    table.add_column("class")
    table.add_column("recall %", justify="right")
    for name, recall in result["per_class_recall"].items():
        table.add_row(name, "-" if recall is None else f"{recall:.2f}")
    table.add_section()
    table.add_row("UAR", f"{result['uar']:.2f}")
    table.add_row("WAR", f"{result['war']:.2f}")
    return table


def predict_table(result: Sequence[dict[str, Any]]) -> Table:
    classes = list(result[0]["probabilities"]) if result else []
    table = Table(title="per-class probabilities")
    table.add_column("clip", overflow="fold")
    for name in classes:
        table.add_column(name, justify="right")
    table.add_column("prediction")
    faces = any("face_found" in row for row in result)  # --face-crop: whether a face was found and cropped
    if faces:
        table.add_column("face")
    for row in result:
        face = ["cropped" if row.get("face_found") else "none found, full frames"] if faces else []
        table.add_row(row["clip"], *[f"{row['probabilities'][c]:.3f}" for c in classes], row["prediction"], *face)
    return table
