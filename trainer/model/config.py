"""ModelConfig: every setting that decides the architecture of a DFER-CLIP model.

The resolved config travels inside every checkpoint, so a model can be rebuilt from it alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from trainer.declare import COMPARE, RUN, switch
from trainer.errors import ModelConfigError
from trainer.model.families import family

POSITIONS = ("end", "front", "middle")
NORMALIZE = ("none", "clip")
MODES = ("dfer", "mean", "linear_probe", "finetune", "zeroshot")
CLIP_TEXT_MODES = ("align", "fuse")  # how --clip-texts enters: trainer.cliptexts
PEFT = ("none", "lora", "adapter")  # the methods of trainer.model.peft.METHODS, and none


@dataclass
class ModelConfig:
    """Architecture of a DFER-CLIP model (defaults follow the paper: ViT-B/32, M=8, class-specific).

    mode: `dfer` (learned context + temporal model), `mean` (no temporal model: mean of frame
    features), `linear_probe` (frozen image encoder + linear head), `finetune` (image encoder +
    linear head), `zeroshot` (plain text prompts, mean frame feature, nothing learns).
    image_size: None takes the backbone's own size; for `tiny` it may be 32 or 64.
    peft: `lora` or `adapter` trains only low-rank deltas (rank `lora_rank`, scale `lora_alpha / rank`)
    or bottleneck adapters (`adapter_dim` hidden units) in the image encoder (`trainer.model.peft`).
    negatives: FineCLIPER-style negative descriptions (what the expression does not show); logits
    become scale * (cos(video, positive_c) - negative_weight * cos(video, negative_c)), the negative
    prompts with their own learned context. The texts must carry negatives.
    multi_descriptions: CuPL-style several descriptions per class; a class's text feature is the
    normalised mean of its descriptions' normalised features (one learned context per class, shared
    by its descriptions). The texts must carry variants.
    """

    backbone: str = field(default="ViT-B-32", metadata=switch(
        "--backbone", help="open_clip model name or tiny.", commands=(RUN, COMPARE)))
    pretrained: str | None = field(default=None, metadata=switch(
        "--pretrained", help="Weights file or folder for the backbone (offline).", commands=(RUN, COMPARE)))
    quick_gelu: bool = True
    n_ctx: int = 8
    class_specific: bool = True
    position: str = "end"
    ctx_init: str | None = None
    temporal_depth: int = 1
    temporal_heads: int = 8
    temporal_head_dim: int = 64
    temporal_mlp_dim: int = 1024
    temperature: float = 0.01
    use_logit_scale: bool = False
    normalize: str = "none"
    mode: str = "dfer"
    grad_checkpointing: bool = False
    num_frames: int = 16
    image_size: int | None = None
    peft: str = field(default="none", metadata=switch(
        "--peft", summary=True,
        help="lora | adapter: train only LoRA deltas / bottleneck adapters in the image encoder."))
    lora_rank: int = 4
    lora_alpha: float = 8.0
    adapter_dim: int = 16
    negatives: bool = field(default=False, metadata=switch(
        "--negatives", help="FineCLIPER-style: subtract the weighted similarity to each class's negative "
        "description (the set needs negatives).", summary=True))
    negative_weight: float = field(default=0.5, metadata=switch(
        "--negative-weight", help="Weight of the negative similarity with --negatives, in [0, 10] (default 0.5)."))
    multi_descriptions: bool = field(default=False, metadata=switch(
        "--multi-descriptions", help="CuPL-style: each class's text feature is the mean over its several "
        "descriptions (the set needs variants).", summary=True))
    clip_texts: str | None = field(default=None, metadata=switch(  # trainer.cliptexts, docs/clip-texts.md
        "--clip-texts", help="A clip-text set (NAME[/vN], from `promptkit describe-clips`) describing "
        "every clip of the lists; how it is used: --clip-text-mode.", summary=True))
    clip_text_mode: str = field(default="align", metadata=switch(
        "--clip-text-mode", help="align: an auxiliary video-to-clip-text contrastive loss (training "
        "only); fuse: the clip text's feature is added to the video feature (test clips need texts)."))
    clip_text_weight: float = field(default=0.5, metadata=switch(
        "--clip-text-weight", help="align: weight of the auxiliary loss; fuse: weight of the text "
        "feature in the sum; in [0, 10] (default 0.5)."))

    def __post_init__(self) -> None:
        if not isinstance(self.backbone, str) or not self.backbone.strip():
            raise ModelConfigError(f"backbone must be an open_clip model name or 'tiny', got {self.backbone!r}")
        _choice("position", self.position, POSITIONS)
        _choice("normalize", self.normalize, NORMALIZE)
        _choice("mode", self.mode, MODES)
        _int_at_least("n_ctx", self.n_ctx, 0)
        _int_at_least("temporal_depth", self.temporal_depth, 1)
        _int_at_least("temporal_heads", self.temporal_heads, 1)
        _int_at_least("temporal_head_dim", self.temporal_head_dim, 1)
        _int_at_least("temporal_mlp_dim", self.temporal_mlp_dim, 1)
        _int_at_least("num_frames", self.num_frames, 1)
        _choice("peft", self.peft, PEFT)
        _int_at_least("lora_rank", self.lora_rank, 1)
        _int_at_least("adapter_dim", self.adapter_dim, 1)
        if isinstance(self.lora_alpha, bool) or not isinstance(self.lora_alpha, (int, float)) or not self.lora_alpha > 0:
            raise ModelConfigError(f"lora_alpha must be a positive number, got {self.lora_alpha!r}")
        if self.peft != "none" and self.mode not in ("dfer", "mean", "finetune"):
            raise ModelConfigError(f"--peft {self.peft} adapts the image encoder; mode {self.mode!r} does not train it "
                                   "(use dfer, mean or finetune)")
        for flag in ("negatives", "multi_descriptions"):
            if not isinstance(getattr(self, flag), bool):
                raise ModelConfigError(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        weight = self.negative_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 10:
            raise ModelConfigError(f"negative_weight must be a number in [0, 10], got {weight!r}")
        if (self.negatives or self.multi_descriptions) and not self.uses_text:
            flag = "--negatives" if self.negatives else "--multi-descriptions"
            raise ModelConfigError(f"{flag} changes the class text features; mode {self.mode!r} has no text side "
                                   "(use dfer, mean or zeroshot)")
        self._check_clip_texts()
        if not isinstance(self.temperature, (int, float)) or not self.temperature > 0:
            raise ModelConfigError(f"temperature must be a positive number, got {self.temperature!r}")
        if self.ctx_init is not None and (not isinstance(self.ctx_init, str) or not self.ctx_init.strip()):
            raise ModelConfigError(f"ctx_init must be a non-empty phrase or None, got {self.ctx_init!r}")
        if self.image_size is not None:
            _int_at_least("image_size", self.image_size, 8)
            sizes = family(self.backbone).image_sizes
            if sizes is not None and self.image_size not in sizes:
                raise ModelConfigError(
                    f"image_size for the {self.backbone} backbone must be one of {sizes}, got {self.image_size!r}"
                )
        if self.position != "end" and self.n_ctx == 0:
            raise ModelConfigError(f"position {self.position!r} places text around learned context; it needs n_ctx > 0")

    def _check_clip_texts(self) -> None:
        _choice("clip_text_mode", self.clip_text_mode, CLIP_TEXT_MODES)
        weight = self.clip_text_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 10:
            raise ModelConfigError(f"clip_text_weight must be a number in [0, 10], got {weight!r}")
        if self.clip_texts is None:
            return
        if not isinstance(self.clip_texts, str) or not self.clip_texts.strip():
            raise ModelConfigError(f"clip_texts must name a clip-text set (NAME[/vN]), got {self.clip_texts!r}")
        if self.mode not in ("dfer", "mean"):
            raise ModelConfigError(f"--clip-texts trains a video feature against clip texts; mode {self.mode!r} "
                                   "does not (use dfer or mean)")

    @property
    def fuses_clip_texts(self) -> bool:
        """Whether the video feature takes each clip's text feature in (then test clips need texts)."""
        return self.clip_texts is not None and self.clip_text_mode == "fuse"

    @property
    def uses_text(self) -> bool:
        """Whether logits come from class text features (False for the linear-head baselines)."""
        return self.mode in ("dfer", "mean", "zeroshot")

    @property
    def effective_n_ctx(self) -> int:
        """Learnable context length actually used: zero-shot prompts are plain text."""
        return 0 if self.mode == "zeroshot" else self.n_ctx

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Rebuild from a checkpoint's dict; unknown keys are an error naming them."""
        if not isinstance(data, dict):
            raise ModelConfigError(f"model config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelConfigError(f"unknown model config keys {unknown}; this toolkit knows {sorted(known)}")
        return cls(**data)


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ModelConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def _int_at_least(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ModelConfigError(f"{name} must be an integer >= {low}, got {value!r}")
