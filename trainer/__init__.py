"""trainer: DFER-CLIP on open_clip — learned context before LLM descriptions, trained end to end on video."""

__version__ = "0.1.0"
