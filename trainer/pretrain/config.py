"""Settings of `trainer pretrain` (the model itself: trainer.model.tinyface)."""

from __future__ import annotations

from dataclasses import dataclass

from trainer.errors import PretrainError

__all__ = ["PretrainConfig", "PretrainError"]


@dataclass(frozen=True)
class PretrainConfig:
    """What `trainer pretrain` renders and how it trains (the defaults made the shipped weights)."""

    pairs: int = 30000
    eval_pairs: int = 512
    eval_clips: int = 20
    steps: int = 3000
    batch: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.1
    warmup: float = 0.05
    image_size: int = 64
    render_size: int = 72
    seed: int = 0
    workers: int = 2
    log_every: int = 50
    soft_targets: bool = True

    def __post_init__(self) -> None:
        if self.eval_clips < 0:
            raise PretrainError(f"eval_clips must be >= 0, got {self.eval_clips!r}")
        for name in ("pairs", "eval_pairs", "steps", "batch", "workers", "log_every"):
            if getattr(self, name) < 1:
                raise PretrainError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0 < self.lr < 1:
            raise PretrainError(f"lr must be in (0, 1), got {self.lr!r}")
        if not 0 <= self.warmup < 1:
            raise PretrainError(f"warmup must be a fraction in [0, 1), got {self.warmup!r}")
        if self.image_size % 32:
            raise PretrainError(f"image_size must be a multiple of 32 (the ResNet's stride), got {self.image_size!r}")
        if not self.image_size <= self.render_size <= 512:
            raise PretrainError(f"render_size must be in image_size..512, got {self.render_size!r}")
