"""`trainer run | eval | predict | synth`: thin Typer commands over trainer.protocol / inference.

Progress and tables go to stderr / stdout through rich; only rank 0 of a distributed run prints.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from trainer.commands.run_view import EvalProgress, eval_heading, eval_table, make_progress, predict_tables, protocol_table
from trainer.commands.switches import SWITCHES, with_switches
from trainer.config import TEST_VIEWS_HELP
from trainer.data.registry import SYNTH
from trainer.errors import ConfigError

RUN_HELP = """Train DFER-CLIP. With no data options it trains the tiny model on a synthetic set it
generates itself (a few minutes on 2 CPU cores). `--dataset dfew --data-root DIR --fold all --seeds 1 2 3`
runs the paper's protocol. Distributed: `torchrun --nproc-per-node N -m trainer run ...` (--batch is global)."""

BASE_WEIGHTS_HELP = ("Where the base weights of a --peft delta checkpoint are (a file or folder), when not at "
                     "the ref it records; their sha256 must match.")


def _default_out(preset: str) -> Path:
    base = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{preset}"
    out, n = base, 2
    while out.exists():
        out, n = Path(f"{base}-{n}"), n + 1
    return out


def _seeds(seeds: Optional[str], extra: list[str]) -> list[int] | None:
    if extra and seeds is None:
        raise ConfigError(f"unexpected argument(s) {' '.join(extra)!r}; `trainer run` takes options only")
    if seeds is None:
        return None
    parts = seeds.replace(",", " ").split() + list(extra)
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--seeds takes integers (e.g. --seeds 1 2 3); got {' '.join(parts)!r}") from None


@with_switches("run")
def run(
    ctx: typer.Context,
    preset: Optional[str] = typer.Option(None, help="default | dfew | ferv39k | mafw (default: the dataset's, else default)."),
    config_file: Optional[Path] = typer.Option(None, "--config", help="JSON config (e.g. an earlier run's config.json)."),
    sets: list[str] = typer.Option([], "--set", help="Override any config field: key=value, dotted (optim.lr_image=1e-4)."),
    seeds: Optional[str] = typer.Option(None, help="Seeds to run (e.g. --seeds 1 2 3); one run per fold x seed."),
    switches: dict[str, Any] = SWITCHES,  # one option per switch declared on the config fields
    out: Optional[Path] = typer.Option(None, help="Run folder (default runs/<time>-<preset>)."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last.pt (its own config.json is used)."),
    overwrite: bool = typer.Option(False, help="Replace the run files in an existing --out."),
    quiet: bool = typer.Option(False, help="One log line per epoch instead of progress bars."),
) -> None:
    """Train (and evaluate every epoch); writes config, checkpoints, metrics, plots and summary.json."""
    from trainer.distributed import init_distributed, shutdown
    from trainer.options import cli_options, config_from_options, given, preset_name
    from trainer.protocol import check_run_dir, load_run_spec, parse_folds, start_run

    seed_list = _seeds(seeds, list(ctx.args))
    fold = switches.pop("fold")  # the protocol's folds: one, a comma list or all (one run each)
    options = cli_options(**switches)
    if resume:
        if out is None:
            raise ConfigError("--resume needs --out RUN_FOLDER (the run to continue)")
        config, fold_list, seed_list = load_run_spec(out)
        ignored = bool(given(options) or sets or config_file or preset or fold)
    else:
        config = config_from_options(preset, config_file, options, sets)
        fold_list = parse_folds(fold, config.data.dataset)
        out = out or _default_out(preset_name(preset, options))
    check_run_dir(out, resume=resume, overwrite=overwrite)
    dist = init_distributed(config.device)
    console = Console(stderr=True, quiet=not dist.is_main, soft_wrap=True)
    try:
        if resume and ignored:
            console.print(f"note: resuming with {out / 'config.json'}; the other options given are ignored")
        progress = make_progress(console, quiet)
        with progress:
            results = start_run(config, out, fold_list, seed_list, resume=resume, overwrite=overwrite,
                                ctx=dist, progress=progress)
    finally:
        shutdown(dist)
    if dist.is_main:
        console = Console()
        console.print(f"run folder: {out}", highlight=False, soft_wrap=True)
        console.print(protocol_table(results, with_folds=config.data.dataset is not None))


def evaluate(
    checkpoint: Path = typer.Argument(..., help="A native checkpoint (a run's best.pt, or an imported one) or a run folder (its best.pt, else last.pt)."),
    test_list: Optional[str] = typer.Option(None, help="List file or CSV of the clips to evaluate (default: the test list the run recorded)."),
    data_root: Optional[str] = typer.Option(None, help="Remaps the absolute paths inside the list."),
    batch: int = typer.Option(16, help="Clips per batch."),
    workers: int = typer.Option(2, help="Data loader worker processes."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    precision: str = typer.Option("fp32", help="fp32 | bf16 | fp16 (GPU only)."),
    test_views: str = typer.Option("1x1", help=TEST_VIEWS_HELP),
    base_weights: Optional[str] = typer.Option(None, help=BASE_WEIGHTS_HELP),
    clip_texts: Optional[str] = typer.Option(None, help="For a model that fuses clip texts: the clip-text set describing the test clips (default: the one it was trained with)."),
    store: Optional[str] = typer.Option(None, help="The user store holding --clip-texts (default $PROMPTKIT_STORE, else the per-user folder)."),
    out: Optional[Path] = typer.Option(None, help="Also write the result as JSON here."),
) -> None:
    """UAR, WAR and per-class recall of a checkpoint on a clip list."""
    from trainer.inference import evaluate_checkpoint
    from trainer.report import write_json

    with EvalProgress(Console(stderr=True), str(test_list or "the run's test list")) as progress:
        result = evaluate_checkpoint(checkpoint, test_list, data_root=data_root, batch=batch, workers=workers,
                                     device=device, precision=precision, test_views=test_views,
                                     base_weights=base_weights, on_batch=progress, clip_texts=clip_texts,
                                     store=store)
    if result.get("mismatches"):
        Console(stderr=True).print(f"note: {result['mismatches']}")
    console = Console()
    for line in eval_heading(result):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(eval_table(result))
    if out is not None:
        write_json(out, result)


def predict(
    checkpoint: Path = typer.Argument(..., help="A native checkpoint, or a run folder (its best.pt, else last.pt)."),
    clips: list[str] = typer.Argument(..., help="Clips: folders of frames or video files."),
    face_crop: bool = typer.Option(False, help="Crop the face first (OpenCV's bundled detector; for whole-scene videos)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    test_views: str = typer.Option("1x1", help=TEST_VIEWS_HELP),
    base_weights: Optional[str] = typer.Option(None, help=BASE_WEIGHTS_HELP),
    min_frames: Optional[int] = typer.Option(None, help="Refuse clips with fewer frames (default: half the frames the model samples; 1 pads any clip, as training does)."),
) -> None:
    """Per-class probabilities for each clip."""
    from trainer.inference import predict_clips

    result = predict_clips(checkpoint, clips, face_crop=face_crop, device=device, test_views=test_views,
                           base_weights=base_weights, min_frames=min_frames)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        console = Console()
        for table in predict_tables(result, console.width):
            console.print(table)


def synth(
    out: Path = typer.Option(..., help="Folder to write the set into (frames + train.txt / test.txt)."),
    train_per_class: int = typer.Option(SYNTH.train_per_class, help="Training clips per class."),
    test_per_class: int = typer.Option(SYNTH.test_per_class, help="Test clips per class."),
    size: int = typer.Option(SYNTH.size, help="Frame size in pixels."),
    seed: int = typer.Option(SYNTH.seed, help="Seed (the set is a pure function of its settings)."),
    min_frames: int = typer.Option(SYNTH.min_frames, help="Fewest frames of a clip."),
    max_frames: int = typer.Option(SYNTH.max_frames, help="Most frames of a clip."),
    style: str = typer.Option(SYNTH.style, help="cartoon (the world's) | chalk | sketch (styles pretraining never saw)."),
    workers: int = typer.Option(2, help="Processes rendering clips (the set does not depend on it)."),
) -> None:
    """Write the synthetic 7-class face-world set: drawn faces whose expression (action units, shape
    only) builds up over the clip; numbered clip folders and the authors' list files."""
    from trainer.data.synthetic import generate

    made = generate(out, train_per_class=train_per_class, test_per_class=test_per_class, size=size, seed=seed,
                    min_frames=min_frames, max_frames=max_frames, style=style, workers=workers)
    typer.echo(f"wrote {made.train_list} and {made.test_list}")


def register(app: typer.Typer) -> None:
    """Add run, eval, predict and synth to the `trainer` app."""
    app.command("run", help=RUN_HELP, context_settings={"allow_extra_args": True})(run)
    app.command("eval")(evaluate)
    app.command("predict")(predict)
    app.command("synth")(synth)
