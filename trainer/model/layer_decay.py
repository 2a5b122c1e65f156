"""Layer-wise learning-rate decay for the image encoder (`--layer-decay X`, with SGD or AdamW).

The encoder's parameters are numbered by depth: the stem / patch embedding is layer 0, block i of a
ViT (or stage i of a ModifiedResNet) is layer i + 1, and the head (ViT: ln_post, proj; ModifiedResNet:
the attention pool) is layer L + 1. Layer k gets `lr_image * X ** (L + 1 - k)`: the head the full
rate, earlier layers less (Clark et al., ELECTRA, ICLR 2020; Bao et al., BEiT, ICLR 2022).
"""

from __future__ import annotations

import re
from typing import Any

from torch import nn

_VIT_BLOCK = re.compile(r"^transformer\.resblocks\.(\d+)\.")
_RESNET_STAGE = re.compile(r"^layer(\d+)\.")
_VIT_HEAD = ("ln_post", "proj")
_RESNET_HEAD = ("attnpool",)


def layer_of(name: str, n_blocks: int) -> int:
    """Depth index of one encoder parameter name (0 .. n_blocks + 1)."""
    for pattern, offset in ((_VIT_BLOCK, 1), (_RESNET_STAGE, 0)):
        match = pattern.match(name)
        if match:
            return int(match.group(1)) + offset
    if name.split(".", 1)[0] in _VIT_HEAD + _RESNET_HEAD:
        return n_blocks + 1
    return 0


def count_blocks(encoder: nn.Module) -> int:
    """Transformer blocks of a ViT, or stages (layer1 ..) of a ModifiedResNet."""
    blocks = getattr(getattr(encoder, "transformer", None), "resblocks", None)
    if blocks is not None:
        return len(blocks)
    return sum(1 for name, _ in encoder.named_children() if _RESNET_STAGE.match(name + "."))


def layer_groups(encoder: nn.Module, lr: float, decay: float, name: str = "image") -> list[dict[str, Any]]:
    """Optimizer groups of the encoder's trainable parameters, one per depth with its decayed rate."""
    n_blocks = count_blocks(encoder)
    by_layer: dict[int, list[nn.Parameter]] = {}
    for pname, p in encoder.named_parameters():
        if p.requires_grad:
            by_layer.setdefault(layer_of(pname, n_blocks), []).append(p)
    top = n_blocks + 1
    return [{"params": params, "lr": lr * decay ** (top - k), "name": f"{name}.l{k}"}
            for k, params in sorted(by_layer.items())]
