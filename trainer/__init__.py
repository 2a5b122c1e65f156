"""trainer: DFER-CLIP on open_clip — learned context before LLM descriptions, trained end to end on video."""

from __future__ import annotations

from trainer.lazy import lazy_names

__version__ = "0.1.0"

# `trainer.load_model` (a checkpoint file, a run folder or an exported folder) and `trainer.Predictor`
# load on first use, so `import trainer` does not import torch/open_clip
__getattr__ = lazy_names(__name__, {"load_model": "trainer.model.checkpoint", "Predictor": "trainer.predictor"})
