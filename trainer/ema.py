"""An exponential moving average (EMA) of a model's trainable weights (`--ema DECAY`).

After every optimiser step `shadow = decay * shadow + (1 - decay) * weight` for each trainable
parameter (Polyak & Juditsky 1992; as used for vision models by Tan & Le, EfficientNet, 2019, and
timm's ModelEmaV2). Evaluation runs with the averaged weights swapped in (`swapped_in`), and the
shadow is part of `last.pt`, so a resumed run continues the same average.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import nn

from trainer.errors import CheckpointError, ConfigError


class WeightEMA:
    """The EMA of `model`'s parameters that require grad, keyed by parameter name."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ConfigError(f"the EMA decay must be in (0, 1); got {decay!r}")
        self.model, self.decay = model, float(decay)
        self.shadow: dict[str, torch.Tensor] = {
            name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad
        }

    @torch.no_grad()
    def update(self) -> None:
        """Fold the model's current weights into the average (call after each optimiser step)."""
        params = dict(self.model.named_parameters())
        for name, avg in self.shadow.items():
            avg.lerp_(params[name].detach(), 1.0 - self.decay)  # avg += (1 - decay) * (w - avg)

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its own ones again after."""
        params = dict(self.model.named_parameters())
        saved = {name: params[name].detach().clone() for name in self.shadow}
        with torch.no_grad():
            for name, avg in self.shadow.items():
                params[name].copy_(avg)
        try:
            yield
        finally:
            with torch.no_grad():
                for name, weight in saved.items():
                    params[name].copy_(weight)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "shadow": {k: v.detach().cpu().clone() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        shadow = state.get("shadow") if isinstance(state, dict) else None
        if not isinstance(shadow, dict) or set(shadow) != set(self.shadow):
            raise CheckpointError("the checkpoint's EMA weights do not match the model's trainable weights")
        for name, value in shadow.items():
            self.shadow[name].copy_(value)
