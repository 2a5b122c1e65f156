"""Parameter-efficient fine-tuning of the image encoder (`--peft lora|adapter`).

- `lora` (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022): every
  projection weight W (out, in) of the image encoder becomes `W + (alpha / r) * B @ A`, with A
  (r, in) small random, B (out, r) zero, W frozen. It is a weight parametrization of the nn.Linear
  (`torch.nn.utils.parametrize`), not a forward wrapper, because open_clip's attention pool and
  nn.MultiheadAttention read `.weight` / `in_proj_weight` directly and would bypass a wrapper. A ViT
  gets it on its attention (in_proj, out_proj) and MLP (c_fc, c_proj) projections; the ModifiedResNet
  of `tinyface` on its attention-pool projections (q, k, v, c_proj; its convolutions stay frozen).
- `adapter` (Houlsby et al., ICML 2019; parallel form of AdaptFormer, Chen et al., NeurIPS 2022): a
  residual bottleneck `x -> x + up(relu(down(x)))`, `up` zero-initialised so training starts from
  the pretrained function: beside every ViT block's MLP, or after a ModifiedResNet's attention pool.

Only the LoRA / adapter weights train in the image encoder (learning rate `lr_image`). A model
written for use (best.pt, `save_model`) holds only what is not the base weights' own, with a
reference to them and their sha256 (`trainer.model.checkpoint.compact_payload`); last.pt is full.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from trainer.errors import ModelConfigError

TRAINABLE_MARKERS = ("lora_", "adapter.")  # parameter-name parts of the PEFT weights


class LoRADelta(nn.Module):
    """Parametrization `W -> W + scale * B @ A` of a (out, in) weight."""

    def __init__(self, out_features: int, in_features: int, rank: int, alpha: float) -> None:
        super().__init__()
        self.lora_a = nn.Parameter(torch.empty(rank, in_features))  # (r, in)
        self.lora_b = nn.Parameter(torch.zeros(out_features, rank))  # (out, r): the delta starts at 0
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + (self.lora_b @ self.lora_a).to(weight.dtype) * self.scale  # (out, in)


class Bottleneck(nn.Module):
    """`x -> up(relu(down(x)))` over the last dimension, `up` zero-initialised."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, hidden)
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(torch.relu(self.down(x)))  # (..., dim)


class ParallelAdapter(nn.Module):
    """`module(x) + adapter(x)`: beside a transformer block's MLP (AdaptFormer)."""

    def __init__(self, module: nn.Module, dim: int, hidden: int) -> None:
        super().__init__()
        self.module, self.adapter = module, Bottleneck(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x) + self.adapter(x)  # (..., dim)


class SequentialAdapter(nn.Module):
    """`y + adapter(y)` with `y = module(x)`: after a module (Houlsby)."""

    def __init__(self, module: nn.Module, dim: int, hidden: int) -> None:
        super().__init__()
        self.module, self.adapter = module, Bottleneck(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.module(x)  # (B, dim)
        return y + self.adapter(y)


def _lora_targets(encoder: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, weight name) of every projection LoRA adapts in `encoder`."""
    targets: list[tuple[nn.Module, str]] = []
    for module in encoder.modules():
        if isinstance(module, nn.MultiheadAttention) and module.in_proj_weight is not None:
            targets.append((module, "in_proj_weight"))
        elif isinstance(module, nn.Linear):
            targets.append((module, "weight"))
    return targets


def add_lora(encoder: nn.Module, rank: int, alpha: float) -> int:
    """Parametrize the encoder's projections with LoRA; returns how many were adapted."""
    targets = _lora_targets(encoder)
    for module, name in targets:
        out_features, in_features = getattr(module, name).shape
        parametrize.register_parametrization(module, name, LoRADelta(out_features, in_features, rank, alpha))
    return len(targets)


def add_adapters(encoder: nn.Module, hidden: int) -> int:
    """Residual bottleneck adapters beside every ViT block MLP, or after a ModifiedResNet's attention
    pool; returns how many were added."""
    count = 0
    for block in getattr(getattr(encoder, "transformer", None), "resblocks", []):
        if isinstance(getattr(block, "mlp", None), nn.Module):
            dim = block.mlp.c_fc.in_features
            block.mlp = ParallelAdapter(block.mlp, dim, hidden)
            count += 1
    pool = getattr(encoder, "attnpool", None)
    if count == 0 and pool is not None and hasattr(pool, "c_proj"):
        encoder.attnpool = SequentialAdapter(pool, pool.c_proj.out_features, hidden)
        count += 1
    return count


def apply_peft(encoder: nn.Module, method: str, backbone: str, *, rank: int, alpha: float, hidden: int) -> None:
    """Add `method`'s weights to the image encoder; a backbone it cannot adapt is a ModelConfigError."""
    if method == "none":
        return
    add, wraps = METHODS[method]  # the names are trainer.model.config.PEFT's, checked there
    if add(encoder, rank=rank, alpha=alpha, hidden=hidden) == 0:
        raise ModelConfigError(f"--peft {method} cannot adapt the image encoder of backbone {backbone!r} "
                               f"({type(encoder).__name__}): it has no {wraps} to wrap")


# method -> (add its weights to an encoder: the count added, what it wraps); `none` adds nothing
METHODS = {
    "lora": (lambda encoder, rank, alpha, hidden: add_lora(encoder, rank, alpha), "projection"),
    "adapter": (lambda encoder, rank, alpha, hidden: add_adapters(encoder, hidden),
                "transformer block or attention pool"),
}


def is_peft_parameter(name: str) -> bool:
    """Whether a parameter name (in the image encoder) is a LoRA / adapter weight."""
    return any(marker in name for marker in TRAINABLE_MARKERS)
