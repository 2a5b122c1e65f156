"""An exported model folder in the Hugging Face hub layout: `config.json`, `model.safetensors` and
`README.md` (the model card, written by `trainer.export`). The one owner of that folder's format.

`config.json` holds `format` (`dferclip-toolkit-hf`) and `format_version`, `model_type`, the model
config, the class names in label order (also as `id2label` / `label2id`, the hub's convention), the
class texts and the descriptor set they came from, the preprocessing the model expects (image size,
frames, value range, normalisation), and `weights`: the safetensors file name and its sha256.
`model.safetensors` holds every weight (a PEFT delta is exported with its base merged in), so the
folder loads without any base weights file and without pickle.

Reading a folder checks the sha256 first: a missing, truncated or edited weights file is one
CheckpointError, never a model with silently wrong weights. `read_hf_folder` returns the same dict
shape as a native checkpoint (`trainer.model.checkpoint.read_native`), so every reader of checkpoints
takes the folder too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from promptkit.fileio import read_json_object, write_atomic

from trainer.errors import CheckpointError
from trainer.model.checkpoint import FORMAT, FORMAT_VERSION
from trainer.model.dferclip import DFERCLIP
from trainer.model.tinyface import file_sha256

HF_FORMAT = "dferclip-toolkit-hf"
HF_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"


def is_hf_folder(path: str | Path) -> bool:
    """Whether `path` is a folder whose config.json says it is an exported model of this toolkit."""
    config = Path(path) / CONFIG_NAME
    if not config.is_file():
        return False
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == HF_FORMAT


def hf_config(model: DFERCLIP, meta: dict[str, Any], weights_sha256: str) -> dict[str, Any]:
    """config.json's content for `model`; `meta` adds `text` (descriptor set id and hash),
    `num_segments` (frames sampled per clip), `source` (what was exported) and `run_config`."""
    classes = list(model.texts.classes)
    pre = model.preprocessing()
    pre["num_segments"] = int(meta.get("num_segments") or model.config.num_frames)
    return {
        "format": HF_FORMAT,
        "format_version": HF_VERSION,
        "model_type": "dferclip",
        "architectures": ["DFERCLIP"],
        "library_name": "dferclip-toolkit",
        "model_config": model.config.to_dict(),
        "classes": classes,
        "id2label": {str(i): name for i, name in enumerate(classes)},
        "label2id": {name: i for i, name in enumerate(classes)},
        "descriptor_set": {**dict(meta.get("text") or {}), "texts": list(model.texts.texts)},
        "texts": model.texts.to_dict(),
        "preprocessing": pre,
        "weights": {"file": WEIGHTS_NAME, "sha256": weights_sha256, "dtype": "float32"},
        "source": meta.get("source"),
        "run_config": meta.get("run_config"),  # the run that trained it (eval's default test list), or None
    }


def write_hf_folder(model: DFERCLIP, out: str | Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Write `model.safetensors` and `config.json` into `out` (atomically, weights first); return
    the config written. Every weight is saved, contiguous and unshared, on the CPU."""
    from safetensors.torch import save

    out = Path(out)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}  # no shared storage
    try:
        weights = write_atomic(out / WEIGHTS_NAME, save(state, metadata={"format": "pt"}))
        config = hf_config(model, meta, file_sha256(weights))
        write_atomic(out / CONFIG_NAME, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise CheckpointError(f"cannot write the exported model into {out}: {exc.strerror or exc}") from exc
    return config


def read_hf_config(path: str | Path) -> dict[str, Any]:
    """The config.json of an exported folder, checked for format and version."""
    file = Path(path) / CONFIG_NAME
    data = read_json_object(file, "exported model config", CheckpointError,
                            missing=f"{path} has no {CONFIG_NAME}; it is not an exported model folder")
    if data.get("format") != HF_FORMAT:
        raise CheckpointError(f"{file} is not the config of a folder written by `trainer export --format hf`")
    if not isinstance(data.get("format_version"), int) or data["format_version"] > HF_VERSION:
        raise CheckpointError(f"{file} has format_version {data.get('format_version')!r}; this toolkit reads up to {HF_VERSION}")
    for key in ("model_config", "texts", "preprocessing", "weights"):
        if not isinstance(data.get(key), dict):
            raise CheckpointError(f"{file} has no {key} entry; export the model again")
    return data


def read_hf_folder(path: str | Path) -> dict[str, Any]:
    """An exported folder as a native checkpoint dict (`format`, `model` payload with every weight,
    `classes`, `text`, `preprocessing`, `exported`), after checking the weights' sha256."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(path)
    config = read_hf_config(folder)
    weights = folder / str(config["weights"].get("file") or WEIGHTS_NAME)
    if not weights.is_file():
        raise CheckpointError(f"{weights} is missing; the exported folder {folder} is incomplete (export it again)")
    expected = config["weights"].get("sha256")
    found = file_sha256(weights)
    if found != expected:
        raise CheckpointError(f"{weights} has sha256 {found[:19]}..., but {folder / CONFIG_NAME} records "
                              f"{str(expected)[:19]}...; the weights were changed or damaged (export the model again)")
    try:
        state: dict[str, torch.Tensor] = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"cannot read {weights}: {exc}") from None
    pre = dict(config["preprocessing"])
    payload = {"config": config["model_config"], "texts": config["texts"], "state_dict": state,
               "preprocessing": {k: v for k, v in pre.items() if k != "num_segments"}}
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "model": payload,
            "classes": list(config.get("classes") or config["texts"].get("classes") or []),
            "text": {k: v for k, v in (config.get("descriptor_set") or {}).items() if k != "texts"},
            "preprocessing": pre, "run_config": config.get("run_config"),
            "exported": {"folder": str(folder), "source": config.get("source")}}


__all__ = ["HF_FORMAT", "CONFIG_NAME", "WEIGHTS_NAME", "CARD_NAME", "is_hf_folder", "write_hf_folder",
           "read_hf_folder", "read_hf_config", "hf_config"]
