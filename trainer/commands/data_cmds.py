"""Data commands: `trainer prepare` (raw video -> face-cropped frame folders + list) and `trainer doctor`
(check a list against the disk). Each parses its options, calls one library function, renders the result."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from promptkit.classes import resolve_classes
from promptkit.tokens import shorten

SHOWN = 3  # examples per category


def _classes(spec: Optional[str]):
    return resolve_classes(spec).classes if spec else None


class _ClipProgress:
    """A rich bar with clips/s and ETA on a terminal; one plain line per ~5% (or 10 s) otherwise."""

    def __init__(self) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.live = self.console.is_terminal
        self.bar = Progress(TextColumn("prepare"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]:.2f} clips/s"), TextColumn("ETA"), TimeRemainingColumn(),
                            console=self.console, transient=True) if self.live else None
        self.task = None
        self.total = self.done = self.new = 0
        self.start = self.last_line = time.perf_counter()

    def __enter__(self) -> "_ClipProgress":
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def started(self, total: int, done: int) -> None:
        self.total, self.done = total, done
        if done:
            self.console.print(f"{done} of {total} clips already done in this --out (skipped)")
        if self.bar is not None:
            self.task = self.bar.add_task("prepare", total=total, completed=done, rate=0.0)

    def clip(self, record: dict) -> None:
        self.done += 1
        self.new += 1
        now = time.perf_counter()
        rate = self.new / max(now - self.start, 1e-9)
        if self.bar is not None:
            self.bar.update(self.task, advance=1, rate=rate)
            return
        if self.done == self.total or self.new % max(1, self.total // 20) == 0 or now - self.last_line > 10:
            left = (self.total - self.done) / rate if rate > 0 else 0
            self.console.print(f"prepare: {self.done}/{self.total} clips  {rate:.2f} clips/s  ETA {int(left) // 60}:{int(left) % 60:02d}")
            self.last_line = now


def _summary(result) -> Table:
    table = Table(title=f"prepared {len(result.entries)} clips into {result.out}", title_justify="left")
    table.add_column("status")
    table.add_column("clips", justify="right")
    table.add_column("first ones", overflow="fold")
    for status, count in result.counts.items():
        examples = [f"{Path(e['source']).name}: {e['detail']}" if e["detail"] else Path(e["source"]).name
                    for e in result.entries if e["status"] == status][:SHOWN]
        table.add_row(status, str(count), "" if status == "ok" else "\n".join(examples))
    return table


def prepare(
    inputs: Annotated[list[Path], typer.Argument(help="Video files (mp4, avi, mkv, webm, mov) and/or folders, searched recursively (a folder of images is one clip).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder: clips/<id>/00001.jpg..., list.txt, manifest.jsonl, classes.txt.")],
    labels: Annotated[Optional[Path], typer.Option("--labels", help="CSV 'path,label' (label: class name or index); default: class-named parent folders.")] = None,
    classes: Annotated[Optional[str], typer.Option("--classes", help="Class set: dfew | ferv39k | mafw | 'a,b,c' | a file (default: guessed from the names).")] = None,
    size: Annotated[int, typer.Option("--size", help="Side of the square face crops in pixels.")] = 224,
    margin: Annotated[float, typer.Option("--margin", help="Context around the face box on each side, as a share of its side (0.15: like DFEW/MAFW crops).")] = 0.15,
    fps: Annotated[Optional[float], typer.Option("--fps", help="Resample videos to this frame rate (default: keep every frame).")] = None,
    detector: Annotated[str, typer.Option("--detector", help="haar (bundled; haar:640 for small faces) | yunet:MODEL.onnx | module:function | none (centre crop).")] = "haar",
    workers: Annotated[int, typer.Option("--workers", help="Processes working on clips in parallel.")] = 1,
    min_frames: Annotated[int, typer.Option("--min-frames", help="Clips with fewer frames get status too_short.")] = 16,
    min_face: Annotated[float, typer.Option("--min-face", help="Share of the searched frames where the face must be detected, else status no_face.")] = 0.5,
    detect_every: Annotated[int, typer.Option("--detect-every", help="Run the detector on every N-th frame (and the last); the track fills the rest.")] = 1,
) -> None:
    """Cut raw videos into face-cropped frame folders and write the list file and a manifest."""
    from trainer.data.prepare import PrepareConfig
    from trainer.data.prepare import prepare as run_prepare

    cfg = PrepareConfig(size=size, margin=margin, fps=fps, detector=detector, workers=workers, min_frames=min_frames,
                        min_face=min_face, detect_every=detect_every)
    with _ClipProgress() as progress:
        try:
            result = run_prepare(inputs, out, labels=labels, classes=_classes(classes), config=cfg,
                                 on_start=progress.started, on_clip=progress.clip)
        except KeyboardInterrupt:
            progress.console.print(f"interrupted: {progress.done} of {progress.total} clips are finished and kept; "
                                   "the same command resumes")
            raise typer.Exit(130) from None
    console = Console(highlight=False)
    console.print(_summary(result))
    if result.skipped:
        console.print(f"{result.skipped} of {len(result.entries)} clips were done by an earlier run (same settings) and kept")
    console.print(f"list      {result.list_path} ({result.listed} labelled clips)")
    console.print(f"manifest  {result.manifest_path} (every input, its status and face boxes)")
    if result.classes:
        console.print(f"classes   {', '.join(result.classes)} ({result.out / 'classes.txt'})")
    if result.unlabelled:
        console.print(f"{result.unlabelled} ok clips have no label: they are in the manifest and "
                      f"{result.out / 'clips'} (for trainer predict), not in the list")


def _doctor_table(diag) -> Table:
    from trainer.data.doctor import CATEGORIES, FATAL

    table = Table(title=f"{diag.list_path.name}: {diag.clips} listed clips", title_justify="left")
    table.add_column("check")
    table.add_column("found", justify="right")
    table.add_column("first ones (file:line clip: detail)", overflow="fold")
    for key in CATEGORIES:
        items = diag.findings[key]
        shown = [f"{f.line} {'/'.join(Path(f.clip).parts[-2:])}: {shorten(f.detail, 90)}" if f.clip else f"{f.line}: {shorten(f.detail, 90)}"
                 for f in items[:SHOWN]]
        if len(items) > SHOWN:
            shown.append(f"... and {len(items) - SHOWN} more")
        name = f"[bold red]{key}[/]" if key in FATAL and items else key
        table.add_row(name, str(len(items)), "\n".join(shown))
    return table


def doctor(
    list_file: Annotated[Path, typer.Argument(help="A list file '<clip> <frames> <label>', a DFEW split CSV or a CSV 'path,label'.")],
    test_list: Annotated[Optional[Path], typer.Option("--test-list", help="Report clips that are in this list too.")] = None,
    data_root: Annotated[Optional[Path], typer.Option("--data-root", help="Where the clips are here (remaps other machines' absolute paths).")] = None,
    classes: Annotated[Optional[str], typer.Option("--classes", help="Class set for the label check: dfew | ferv39k | mafw | 'a,b,c' | a file.")] = None,
    segments: Annotated[int, typer.Option("--segments", help="Frames the model samples; shorter clips are reported.")] = 16,
    deep: Annotated[bool, typer.Option("--deep", help="Decode every frame and open every video (slow).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    fix: Annotated[Optional[Path], typer.Option("--fix", help="Write a corrected list here (missing and repeated lines dropped, frame counts from disk).")] = None,
) -> None:
    """Check a clip list against the disk: missing clips, frame counts, short clips, duplicates, labels, overlap."""
    from trainer.data.doctor import FATAL, diagnose, write_fixed

    diag = diagnose(list_file, test_list=test_list, data_root=data_root, classes=_classes(classes), segments=segments,
                    deep=deep)
    console = Console(highlight=False, stderr=as_json)
    if as_json:
        typer.echo(json.dumps(diag.to_json()))
    else:
        console.print(_doctor_table(diag))
        console.print("labels: " + ", ".join(f"{k} {v}" for k, v in diag.labels.items()))
    if fix is not None:
        s = write_fixed(diag, fix)
        console.print(f"wrote {s.out}: {s.kept} clips kept, {s.dropped_missing} missing and {s.dropped_duplicates} repeated "
                      f"dropped, {s.counts_set} frame counts set from disk, {s.paths_rewritten} paths written as found "
                      f"under --data-root; {list_file} is unchanged")
    if diag.fatal:
        bad = ", ".join(f"{k} {len(diag.findings[k])}" for k in FATAL if diag.findings[k])
        console.print(f"{list_file}: a run would fail or learn from wrong data ({bad})")
        raise typer.Exit(1)
    if not as_json:
        console.print(f"{list_file}: usable" + (" (warnings above)" if any(diag.findings.values()) else ""))


def register(app: typer.Typer) -> None:
    """Add prepare and doctor to the `trainer` app."""
    app.command("prepare")(prepare)
    app.command("doctor")(doctor)


