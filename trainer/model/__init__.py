"""trainer.model: DFER-CLIP on open_clip (config, class texts, model, checkpoints, official import)."""

from trainer.model.checkpoint import load_model, model_from_payload, model_payload, save_model
from trainer.model.config import ModelConfig
from trainer.model.dferclip import DFERCLIP, autocast_for, build_model
from trainer.model.texts import ClassTexts

__all__ = [
    "ClassTexts",
    "DFERCLIP",
    "ModelConfig",
    "autocast_for",
    "build_model",
    "load_model",
    "model_from_payload",
    "model_payload",
    "save_model",
]
