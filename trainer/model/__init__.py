"""trainer.model: DFER-CLIP on open_clip (config, class texts, model, checkpoints, official import).

The names below load on first use (PEP 562), so importing `trainer.model.config` (the typed
config and its declared switches, which the CLI is built from) does not import torch.
"""

from __future__ import annotations

from trainer.lazy import lazy_names

_WHERE = {
    "ClassTexts": "trainer.model.texts",
    "DFERCLIP": "trainer.model.dferclip",
    "ModelConfig": "trainer.model.config",
    "autocast_for": "trainer.model.dferclip",
    "build_model": "trainer.model.dferclip",
    "load_model": "trainer.model.checkpoint",
    "model_from_payload": "trainer.model.checkpoint",
    "model_payload": "trainer.model.checkpoint",
    "save_model": "trainer.model.checkpoint",
}

__all__ = sorted(_WHERE)
__getattr__ = lazy_names(__name__, _WHERE)
