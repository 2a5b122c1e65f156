"""Sharing a trained model: `trainer export --format hf` (a Hugging Face-style folder with a model
card, `trainer.export.hf`) and `--format onnx` (the whole model as one ONNX graph, verified against
PyTorch, `trainer.export.onnx`). `export_model` is the one entry point the command calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.errors import ExportError

FORMATS = ("hf", "onnx")


def export_model(source: str | Path, fmt: str, out: str | Path, *, base_weights: str | None = None,
                 license_id: str | None = None) -> dict[str, Any]:
    """Export the model of `source` (a run folder, a .pt or an exported folder) as `fmt` into `out`;
    returns what was written and measured (files, seconds, for ONNX the logit difference)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "hf":
        from trainer.export.hf import export_hf

        return export_hf(source, out, base_weights=base_weights, license_id=license_id)
    from trainer.export.onnx import export_onnx

    return export_onnx(source, out, base_weights=base_weights)
