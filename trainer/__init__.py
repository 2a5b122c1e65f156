"""trainer: DFER-CLIP on open_clip — learned context before LLM descriptions, trained end to end on video."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `trainer.load_model` and `trainer.Predictor` without importing torch/open_clip on `import trainer`
    if name == "load_model":  # a checkpoint file, a run folder or an exported folder
        from trainer.model.checkpoint import load_model

        return load_model
    if name == "Predictor":
        from trainer.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")
