"""Native model checkpoints: the payload (config, texts, weights, preprocessing) and its file.

A native file is `{"format": "dferclip-toolkit", "format_version": 1, "model": payload, ...}`;
run checkpoints add the engine's own keys beside `model`. Files hold only tensors and plain
Python data, so they load with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from promptkit.fileio import write_atomic

from trainer.model.config import ModelConfig
from trainer.model.dferclip import DFERCLIP, build_model
from trainer.model.errors import CheckpointError, TrainerError
from trainer.model.texts import ClassTexts

FORMAT = "dferclip-toolkit"
FORMAT_VERSION = 1


def model_payload(model: DFERCLIP) -> dict[str, Any]:
    """Everything needed to rebuild `model` without its pretrained weights file."""
    return {
        "config": model.config.to_dict(),
        "texts": model.texts.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "preprocessing": model.preprocessing(),
    }


def model_from_payload(payload: dict[str, Any]) -> DFERCLIP:
    """Rebuild a model from `model_payload` output (weights from the payload, not from disk)."""
    if not isinstance(payload, dict) or not {"config", "texts", "state_dict"} <= set(payload):
        raise CheckpointError("model payload lacks config, texts or state_dict; it was not written by this toolkit")
    cfg = ModelConfig.from_dict(dict(payload["config"]))
    texts = ClassTexts.from_dict(payload["texts"])
    model = build_model(cfg, texts, load_weights=False)
    load_state(model, payload["state_dict"], "the checkpoint")
    return model


def load_state(model: DFERCLIP, state: dict[str, torch.Tensor], what: str) -> None:
    """Strict load with one-line errors for missing, unexpected and wrongly shaped weights."""
    own = model.state_dict()
    for key, value in state.items():
        if key in own and tuple(own[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{what} does not fit the model: {key} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}"
            )
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {unexpected[0]})")
        raise CheckpointError(f"{what} does not fit the model: weights {', '.join(parts)}")
    model.load_state_dict(state, strict=True)


def save_model(model: DFERCLIP, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> Path:
    """Write a native checkpoint atomically (temp file in the same folder + os.replace)."""
    obj = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": model_payload(model)}
    obj.update(extra or {})
    return write_atomic(path, lambda handle: torch.save(obj, handle))


def read_native(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The dict of a native checkpoint file, with clear errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - foreign pickles, truncated files, not torch at all
        if looks_official(path):
            raise CheckpointError(
                f"{path} looks like an authors' DFER-CLIP checkpoint; convert it first: trainer import-official {path} OUT.pth"
            ) from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a DFER-CLIP toolkit checkpoint ({first[:160]})") from exc
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        if isinstance(obj, dict) and _has_official_keys(obj):
            raise CheckpointError(
                f"{path} is an authors' DFER-CLIP checkpoint; convert it first: trainer import-official {path} OUT.pth"
            )
        raise CheckpointError(f"{path} is not a DFER-CLIP toolkit checkpoint (no format: {FORMAT!r} key)")
    version = obj.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format_version {version!r}; this toolkit reads up to {FORMAT_VERSION}, upgrade it"
        )
    if "model" not in obj:
        raise CheckpointError(f"{path} holds no model payload")
    return obj


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> DFERCLIP:
    """Load a native checkpoint and return the model in eval mode."""
    obj = read_native(path)
    try:
        model = model_from_payload(obj["model"])
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    except TrainerError:
        raise
    return model.to(device).eval()


def _has_official_keys(obj: dict[str, Any]) -> bool:
    state = obj.get("state_dict", obj)
    if not isinstance(state, dict):
        return False
    return any(isinstance(k, str) and k.endswith("prompt_learner.token_suffix") for k in state)


def looks_official(path: Path) -> bool:
    """Cheap check: does the pickle mention the authors' prompt learner keys?"""
    try:
        from trainer.model.official import read_official_state

        return _has_official_keys({"state_dict": read_official_state(path)})
    except Exception:  # noqa: BLE001 - only a hint for the error message
        return False



def describe_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A summary of a native checkpoint without building the model: config, texts, sizes, extras."""
    obj = read_native(path)
    payload = obj["model"]
    if not isinstance(payload, dict) or "config" not in payload or "state_dict" not in payload:
        raise CheckpointError(f"{path} holds a malformed model payload")
    cfg = ModelConfig.from_dict(dict(payload["config"]))
    texts = ClassTexts.from_dict(payload.get("texts", {}))
    counts: dict[str, int] = {}
    for key, value in payload["state_dict"].items():
        part = key.split(".", 1)[0]
        counts[part] = counts.get(part, 0) + int(value.numel())
    extras = {k: v for k, v in obj.items() if k not in ("format", "format_version", "model")}
    return {
        "path": str(path),
        "format_version": obj.get("format_version"),
        "config": cfg.to_dict(),
        "texts": texts.to_dict(),
        "preprocessing": payload.get("preprocessing", {}),
        "tensor_elements": counts,
        "extra_keys": sorted(extras),
        "imported_from": extras.get("imported_from"),
    }
