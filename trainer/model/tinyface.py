"""The tiny face-CLIP: its open_clip config and the weights shipped inside the package.

`tinyface` is a plain open_clip `CLIP` (a ModifiedResNet image tower, CLIP's RN50 design at width
16 with one block per stage, on 64 px; a 3 x 64 text transformer over CLIP's BPE vocabulary and
77-token context; 128-d joint space), pretrained by
`trainer pretrain` on the synthetic face world's frame captions. The weights ship as fp16
safetensors beside a JSON card that holds their sha256; `shipped_weights()` checks both before a
model loads them, so a missing or damaged file is one clear error, never a silent random start.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from trainer.errors import BackboneError

TINYFACE = "tinyface"
SHIPPED_TAG = "world"  # `pretrained: world` names the shipped weights
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "card.json"

TINYFACE_CFG: dict[str, Any] = {
    "embed_dim": 128,
    # A small ResNet learns line geometry from a few thousand steps; a ViT of the same cost did not.
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 3},
}


def tinyface_cfg(image_size: int | None = None) -> dict[str, Any]:
    """A fresh copy of the open_clip config (image_size, a multiple of 32, overrides the 64 px input)."""
    cfg = json.loads(json.dumps(TINYFACE_CFG))
    if image_size is not None:
        cfg["vision_cfg"]["image_size"] = image_size
    return cfg


def shipped_dir() -> Path:
    return Path(__file__).resolve().parent / "weights" / "tinyface-world"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


def read_card(folder: Path) -> dict[str, Any]:
    """The card of a weights folder (shipped or written by `trainer pretrain`)."""
    path = Path(folder) / CARD_NAME
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackboneError(f"the tiny face-CLIP card {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise BackboneError(f"the tiny face-CLIP card {path} cannot be read: {exc}") from exc
    if not isinstance(card, dict) or not isinstance(card.get("weights_sha256"), str):
        raise BackboneError(f"the tiny face-CLIP card {path} has no weights_sha256 entry")
    return card


def verified_weights(folder: Path) -> Path:
    """The weights file of `folder`, after checking it against its card's sha256."""
    folder = Path(folder)
    weights = folder / WEIGHTS_NAME
    hint = ("reinstall the package, or make the weights with `trainer pretrain --out DIR` "
            "and pass --set model.pretrained=DIR")
    if not weights.is_file():
        raise BackboneError(f"the tiny face-CLIP weights {weights} are missing; {hint}")
    card = read_card(folder)
    if file_sha256(weights) != card["weights_sha256"]:
        raise BackboneError(f"the tiny face-CLIP weights {weights} are corrupt (sha256 differs from "
                            f"{folder / CARD_NAME}); {hint}")
    return weights


def shipped_weights() -> Path:
    """The shipped weights file, verified."""
    return verified_weights(shipped_dir())
