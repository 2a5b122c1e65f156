"""Model commands: `trainer import-official` (the authors' .pth -> native) and `trainer info`.

Each command parses its options, calls one library function, and renders the result with rich.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from promptkit.classes import resolve_classes


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def import_official(
    src: Annotated[Path, typer.Argument(help="The authors' checkpoint (.pth), e.g. DFEW-set1-model_best.pth.")],
    out: Annotated[Path, typer.Argument(help="Where to write the native checkpoint.")],
    classes: Annotated[Optional[str], typer.Option("--classes", help="Class names: dfew | ferv39k | mafw | 'a,b,c' | a file (default: by class count, 7 or 11).")] = None,
    backbone: Annotated[Optional[str], typer.Option("--backbone", help="open_clip backbone name (default: matched from the weight shapes).")] = None,
    position: Annotated[str, typer.Option("--position", help="Where the text sat in their run: end | front | middle.")] = "end",
    temporal_heads: Annotated[int, typer.Option("--temporal-heads", help="Attention heads of their temporal model (8 in the paper).")] = 8,
) -> None:
    """Convert an authors' DFER-CLIP checkpoint into a native one (no pickled code is run)."""
    from trainer.model.official import import_official as run_import

    names = None
    if classes is not None:
        names = resolve_classes(classes).classes
    report = run_import(src, out, classes=names, backbone=backbone, position=position, temporal_heads=temporal_heads)
    table = Table(title="classes and their texts")
    table.add_column("label", justify="right")
    table.add_column("class")
    table.add_column("description (recovered from the stored token embeddings)", overflow="fold")
    for i, (name, text) in enumerate(zip(report.classes, report.texts)):
        table.add_row(str(i), name, text)
    console = _console()
    console.print(f"imported {report.source} -> {report.output}", soft_wrap=True)
    console.print(table)
    ctx = "class-specific" if report.class_specific else "shared"
    console.print(
        f"backbone {report.backbone}, {report.n_ctx} {ctx} contexts, temporal depth {report.temporal_depth}, "
        f"{report.num_frames} frames, epoch {report.epoch}, best acc {report.best_acc}"
    )


def info(
    checkpoint: Annotated[Path, typer.Argument(help="A native checkpoint (import-official output or a run checkpoint), a run folder or an exported folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Show a checkpoint's model config, class texts and preprocessing."""
    from trainer.model.sources import describe

    summary = describe(checkpoint)
    if as_json:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    console = _console()
    console.print(f"checkpoint: {summary['path']} (format v{summary['format_version']})", soft_wrap=True)
    config = Table(title="model config and input")
    config.add_column("setting")
    config.add_column("value", overflow="fold")
    for key, value in {**summary["config"], **{f"input.{k}": v for k, v in summary["preprocessing"].items()}}.items():
        config.add_row(key, str(value))
    console.print(config)
    if summary["epoch"] is not None:
        scores = "; ".join(f"{split} UAR {m['uar']:.2f} WAR {m['war']:.2f}" for split, m in (summary["metrics"] or {}).items())
        console.print(f"saved at epoch {summary['epoch']}" + (f": {scores}" if scores else ""))
    texts = Table(title=f"classes ({summary['texts']['source']}, {summary['texts']['content_hash'][:19]}...)")
    texts.add_column("label", justify="right")
    texts.add_column("class")
    texts.add_column("text", overflow="fold")
    for i, (name, text) in enumerate(zip(summary["texts"]["classes"], summary["texts"]["texts"])):
        texts.add_row(str(i), name, text)
    console.print(texts)
    sizes = ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in summary["tensor_elements"].items())
    console.print(f"tensor elements: {sizes}")
    base = summary["base_weights"]
    if base:
        console.print(f"a {summary['config']['peft']} delta over the base weights {base['pretrained']} ({base['sha256']})")
    if summary["extra_keys"]:
        console.print(f"also holds: {', '.join(summary['extra_keys'])}")


def register(app: typer.Typer) -> None:
    """Add import-official and info to the `trainer` app."""
    app.command("import-official")(import_official)
    app.command("info")(info)
