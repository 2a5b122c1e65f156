"""`trainer export` (a Hugging Face-style folder or an ONNX file) and `trainer report` (one
self-contained report.html): thin Typer commands over trainer.export and trainer.report_html."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

Opt = typer.Option


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def export(
    source: Annotated[Path, typer.Argument(help="A run folder (its best.pt, else last.pt), a checkpoint (.pt) or an exported folder.")],
    fmt: Annotated[str, Opt("--format", help="hf (config.json + model.safetensors + README.md model card) | onnx (one .onnx file).")] = "hf",
    out: Annotated[Path, Opt("--out", help="hf: a new or empty folder (or an earlier export, replaced); onnx: FILE.onnx.")] = ...,
    base_weights: Annotated[Optional[str], Opt("--base-weights", help="Where a PEFT delta checkpoint's base weights are, when not at the ref it records (merged into the export).")] = None,
    license_id: Annotated[Optional[str], Opt("--license", help="Licence id for the model card's metadata (default: other, with a reminder of the training data's terms).")] = None,
) -> None:
    """Export a trained model to share it (a hub-style folder with a model card) or deploy it (ONNX)."""
    from trainer.export import export_model

    result = export_model(source, fmt, out, base_weights=base_weights, license_id=license_id)
    console = Console(highlight=False, soft_wrap=True)
    names = ", ".join(Path(f).name for f in result["files"])
    console.print(f"wrote {out} ({names}; {_size(result['size_bytes'])}) from {result['source']} "
                  f"in {result['export_seconds']:.1f} s")
    if fmt == "onnx":
        batches = ", ".join(str(b) for b in result["batches"])
        console.print(f"verified with onnxruntime (CPU): max |logit difference| vs PyTorch {result['max_abs_diff']:.2e} "
                      f"at batch sizes {batches} ({result['verify_seconds']:.1f} s)")


def report(
    run: Annotated[Path, typer.Argument(help="A finished run folder, or a protocol folder (folds x seeds).")],
    out: Annotated[Optional[Path], Opt("--out", help="Where to write the page (default RUN/report.html).")] = None,
) -> None:
    """Write one self-contained report.html of a run: summary, recall, confusion, curves, texts, config, provenance."""
    from trainer.report_html import write_report

    path = write_report(run, out)
    Console(highlight=False, soft_wrap=True).print(f"wrote {path} ({_size(path.stat().st_size)})")


def register(app: typer.Typer) -> None:
    """Add export and report to the `trainer` app."""
    app.command("export")(export)
    app.command("report")(report)
