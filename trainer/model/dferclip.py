"""DFERCLIP: image encoder per frame -> temporal model -> video feature; prompts -> text features;
logits = cosine(video, class text) / temperature. Also the ablation modes and `build_model`.

Beyond the paper (both off by default): `negatives` subtracts a weighted cosine to each class's
negative description, `multi_descriptions` averages several descriptions' features per class.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainer.errors import InputError, ModelConfigError
from trainer.model.backbone import Backbone, create_backbone
from trainer.model.config import ModelConfig
from trainer.model.peft import apply_peft, is_peft_parameter
from trainer.model.prompt import PromptLearner
from trainer.model.temporal import TemporalTransformer
from trainer.model.text_encoder import TextEncoder
from trainer.model.texts import ClassTexts

PARTS = ("image", "temporal", "prompt", "head")


class DFERCLIP(nn.Module):
    """frames (B, T, 3, H, W) float in [0, 1] -> logits (B, n_classes) float32."""

    def __init__(self, cfg: ModelConfig, texts: ClassTexts, backbone: Backbone) -> None:
        super().__init__()
        self.config = cfg
        self.texts = texts
        self.image_size = backbone.image_size
        self.embed_dim = backbone.embed_dim
        self.text_truncation = True  # run the text encoder only up to the longest prompt's EOS
        self._text_cache: tuple[tuple[Any, ...], tuple[torch.Tensor, torch.Tensor | None]] | None = None
        clip = backbone.clip
        self.image_encoder = clip.visual
        self.register_buffer("pixel_mean", torch.tensor(backbone.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(backbone.std).view(1, 3, 1, 1), persistent=False)
        self.prompt_learner: PromptLearner | None = None
        self.negative_learner: PromptLearner | None = None
        self.text_encoder: TextEncoder | None = None
        self.temporal: TemporalTransformer | None = None
        self.head: nn.Linear | None = None
        if cfg.uses_text:
            self.text_encoder = TextEncoder(clip)
            learner_args = (clip.token_embedding, texts, cfg.effective_n_ctx, cfg.class_specific, cfg.position,
                            cfg.ctx_init, self.text_encoder.context_length)
            self.prompt_learner = PromptLearner(*learner_args, rows="variants" if cfg.multi_descriptions else "texts")
            if cfg.negatives:  # its own context: what precedes "what the face does not show" is learned apart
                self.negative_learner = PromptLearner(*learner_args, rows="negatives")
            self.logit_scale = clip.logit_scale
        if cfg.clip_texts is not None:  # frozen: clip texts are encoded as plain text (trainer.cliptexts)
            self.clip_token_embedding = clip.token_embedding
        if cfg.mode == "dfer":
            self.temporal = TemporalTransformer(
                self.embed_dim, cfg.num_frames, cfg.temporal_depth, cfg.temporal_heads,
                cfg.temporal_head_dim, cfg.temporal_mlp_dim,
            )
        if cfg.mode in ("linear_probe", "finetune"):
            self.head = nn.Linear(self.embed_dim, len(texts))
        self.mean = tuple(backbone.mean)
        self.std = tuple(backbone.std)
        self.base_sha256 = backbone.sha256  # of the pretrained file loaded (PEFT models), else None
        self.base_keys: frozenset[str] = frozenset()  # state keys that are the backbone's own (build_model)

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names in label order: logits[:, i] scores `classes[i]`."""
        return tuple(self.texts.classes)

    # ------------------------------------------------------------------ features
    def preprocessing(self) -> dict[str, Any]:
        """What the input must look like; stored in checkpoints so the data side can follow it."""
        return {
            "value_range": [0.0, 1.0],
            "normalize": self.config.normalize,
            "mean": list(self.mean) if self.config.normalize == "clip" else None,
            "std": list(self.std) if self.config.normalize == "clip" else None,
            "image_size": self.image_size,
            "num_frames": self.config.num_frames,
            "layout": "B,T,3,H,W",
        }

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) in [0, 1] -> per-frame image features (B, T, E)."""
        self._check_frames(frames)
        b, t = frames.shape[:2]
        x = frames.reshape(b * t, *frames.shape[2:])  # (B*T, 3, H, W)
        if self.config.normalize == "clip":
            x = (x - self.pixel_mean.to(x.dtype)) / self.pixel_std.to(x.dtype)
        frozen = not any(p.requires_grad for p in self.image_encoder.parameters())
        with torch.no_grad() if frozen else contextlib.nullcontext():
            feats = self.image_encoder(x)  # (B*T, E)
        return feats.reshape(b, t, -1)  # (B, T, E)

    def video_features(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> video feature (B, E), unnormalised."""
        feats = self.frame_features(frames)  # (B, T, E)
        if self.temporal is not None:
            return self.temporal(feats)  # (B, E)
        return feats.mean(dim=1)  # (B, E)

    def text_features(self) -> torch.Tensor:
        """L2-normalised class text features (n_cls, E) float32; cached when nothing text-side learns."""
        return self._class_texts()[0]

    def negative_text_features(self) -> torch.Tensor:
        """L2-normalised features of the classes' negative descriptions (n_cls, E) float32."""
        negative = self._class_texts()[1]
        if negative is None:
            raise ModelConfigError("this model has no negative descriptions (built without negatives)")
        return negative

    def _class_texts(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(positive, negative or None) class text features, each (n_cls, E) float32, normalised."""
        if self.prompt_learner is None or self.text_encoder is None:
            raise ModelConfigError(f"mode {self.config.mode!r} has no text side")
        learners = [x for x in (self.prompt_learner, self.negative_learner) if x is not None]
        cacheable = not (self.training and torch.is_grad_enabled() and any(x.learnable for x in learners))
        key = self._cache_key()
        if cacheable and self._text_cache is not None and self._text_cache[0] == key:
            return self._text_cache[1]
        with contextlib.nullcontext() if not cacheable else torch.no_grad():
            positive = self._encode(self.prompt_learner)
            negative = self._encode(self.negative_learner) if self.negative_learner is not None else None
        self._text_cache = (key, (positive, negative)) if cacheable else None
        return positive, negative

    def _encode(self, learner: PromptLearner) -> torch.Tensor:
        """One learner's prompts -> class features (n_cls, E) float32, normalised; a class with
        several prompts gets the normalised mean of their normalised features."""
        length = int(learner.eos_index.max()) + 1 if self.text_truncation else None
        prompts = learner(length)  # (P, l, D)
        feats = self.text_encoder(prompts, learner.eos_index, truncate=self.text_truncation)  # (P, E)
        feats = F.normalize(feats.float(), dim=-1)  # (P, E)
        if learner.n_prompts == learner.n_cls:
            return feats
        sums = feats.new_zeros(learner.n_cls, feats.shape[-1]).index_add(0, learner.row_class, feats)  # (n_cls, E)
        return F.normalize(sums, dim=-1)  # the mean's direction: dividing by the count changes nothing

    def _cache_key(self) -> tuple[Any, ...]:
        versions = []
        for learner in (self.prompt_learner, self.negative_learner):
            ctx = learner.ctx if learner is not None else None
            versions.append((ctx.data_ptr(), ctx._version) if ctx is not None else None)
        return (str(self.prompt_learner.embeddings.device), tuple(versions), self.text_truncation,
                torch.is_autocast_enabled("cuda") or torch.is_autocast_enabled("cpu"))

    def forward(self, frames: torch.Tensor, clip_text: torch.Tensor | None = None,
                with_video: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """frames (B, T, 3, H, W) -> logits (B, n_cls); with `with_video` also the video feature (B, E).
        A model that fuses clip texts takes their features `clip_text` (B, E), normalised, a zero
        row for a clip without a text (`trainer.cliptexts`)."""
        video = self.video_features(frames)  # (B, E)
        if self.config.fuses_clip_texts:
            video = self.fuse_clip_text(video, clip_text)  # (B, E)
        logits = self.head(video).float() if self.head is not None else self.class_logits(video)  # (B, n_cls)
        return (logits, video) if with_video else logits

    def fuse_clip_text(self, video: torch.Tensor, clip_text: torch.Tensor | None) -> torch.Tensor:
        """(B, E) video features + the weighted clip-text features (B, E) -> fused features (B, E)."""
        if clip_text is None or clip_text.shape != (video.shape[0], self.embed_dim):
            got = "none" if clip_text is None else tuple(clip_text.shape)
            raise InputError(f"this model fuses clip texts (--clip-text-mode fuse): it needs each clip's text "
                             f"feature, shape ({video.shape[0]}, {self.embed_dim}), got {got}; evaluate it with "
                             "`trainer eval` on clips a clip-text set describes")
        own = F.normalize(video.float(), dim=-1)  # (B, E)
        return own + self.config.clip_text_weight * clip_text.to(own.dtype)  # (B, E)

    @torch.no_grad()
    def encode_clip_texts(self, texts: list[str]) -> tuple[torch.Tensor, int]:
        """Plain texts -> (normalised features (N, E) float32, how many were cut to the text context).
        The frozen text tower reads them as written, without learned context."""
        from promptkit.tokens import EOS_ID, SOS_ID, encode_text

        if self.text_encoder is None or not hasattr(self, "clip_token_embedding"):
            raise ModelConfigError("this model was built without clip texts (model.clip_texts)")
        width = self.text_encoder.context_length
        ids, cut = [], 0
        for text in texts:
            body = encode_text(text)
            cut += len(body) > width - 2
            ids.append([SOS_ID, *body[: width - 2], EOS_ID])
        device = self.clip_token_embedding.weight.device
        table = torch.zeros(len(ids), max(map(len, ids), default=2), dtype=torch.long, device=device)  # (N, L)
        for i, row in enumerate(ids):
            table[i, : len(row)] = torch.tensor(row, device=device)
        eos = torch.tensor([len(row) - 1 for row in ids], device=device)  # (N,)
        feats = self.text_encoder(self.clip_token_embedding(table), eos)  # (N, E)
        return F.normalize(feats.float(), dim=-1), cut

    def class_logits(self, video: torch.Tensor,
                     texts: tuple[torch.Tensor, torch.Tensor | None] | None = None) -> torch.Tensor:
        """Video features (B, E), unnormalised -> logits (B, n_cls) float32 against the class texts
        (`texts`: given (positive, negative or None) features instead, e.g. frozen for an export)."""
        text, negative = texts if texts is not None else self._class_texts()  # (n_cls, E), (n_cls, E) or None
        # cosine / 0.01 spans +-100: keep it in fp32 even under bf16/fp16 autocast
        with torch.autocast(device_type=video.device.type, enabled=False):
            video = F.normalize(video.float(), dim=-1)  # (B, E)
            scale = self.similarity_scale()
            similarity = video @ text.t()  # (B, n_cls)
            if negative is not None:  # looking like what class c does not show counts against c
                similarity = similarity - self.config.negative_weight * (video @ negative.t())  # (B, n_cls)
            return similarity * scale  # (B, n_cls)

    def similarity_scale(self) -> torch.Tensor | float:
        """What cosines are multiplied by: exp(logit_scale) with use_logit_scale, else 1 / temperature."""
        if self.config.use_logit_scale:
            return self.logit_scale.float().exp()
        return 1.0 / self.config.temperature

    def train(self, mode: bool = True) -> "DFERCLIP":
        """Train mode, with the image encoder's batch norms (ResNet towers) kept on their pretrained
        statistics: fine-tuning then does not depend on the batch size or on how a batch is split
        over DDP ranks (their scale and shift still learn)."""
        self._text_cache = None
        super().train(mode)
        for module in self.image_encoder.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def _check_frames(self, frames: torch.Tensor) -> None:
        if not isinstance(frames, torch.Tensor) or frames.dim() != 5 or frames.shape[2] != 3:
            shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
            raise InputError(f"frames must have shape (B, T, 3, H, W), got {shape}")
        if not frames.is_floating_point():
            raise InputError(f"frames must be float in [0, 1], got dtype {frames.dtype}; divide uint8 frames by 255")
        h, w = frames.shape[-2:]
        if h != self.image_size or w != self.image_size:
            raise InputError(f"frames are {h}x{w} but the model takes {self.image_size}x{self.image_size}; resize them")

    # ------------------------------------------------------------------ training
    def parts(self) -> dict[str, list[nn.Parameter]]:
        """Trainable parameters by part: image, temporal, prompt, head (empty parts omitted)."""
        modules = {"image": [self.image_encoder], "temporal": [self.temporal],
                   "prompt": [self.prompt_learner, self.negative_learner], "head": [self.head]}
        out = {}
        for name, group in modules.items():
            params = [p for module in group if module is not None for p in module.parameters() if p.requires_grad]
            if params:
                out[name] = params
        return out

    def param_groups(self, lrs: dict[str, float]) -> list[dict[str, Any]]:
        """Optimizer groups, one per trainable part, each with its own learning rate."""
        unknown = sorted(set(lrs) - set(PARTS))
        if unknown:
            raise ModelConfigError(f"unknown parameter parts {unknown}; parts are {', '.join(PARTS)}")
        groups = []
        for name, params in self.parts().items():
            if name not in lrs:
                raise ModelConfigError(f"no learning rate for the trainable part {name!r}; give one for {sorted(self.parts())}")
            groups.append({"params": params, "lr": float(lrs[name]), "name": name})
        return groups


def set_trainable(model: DFERCLIP) -> None:
    """Freeze everything, then open what the mode trains (text encoder and embeddings stay frozen)."""
    mode = model.config.mode
    for p in model.parameters():
        p.requires_grad_(False)
    if mode in ("dfer", "mean", "finetune"):
        peft = model.config.peft != "none"  # then only the LoRA / adapter weights of the encoder train
        for name, p in model.image_encoder.named_parameters():
            p.requires_grad_(not peft or is_peft_parameter(name))
    if model.temporal is not None:
        model.temporal.requires_grad_(True)
    for learner in (model.prompt_learner, model.negative_learner):
        if learner is not None and learner.ctx is not None and mode != "zeroshot":
            learner.ctx.requires_grad_(True)
    if model.head is not None:
        model.head.requires_grad_(True)


def build_model(cfg: ModelConfig, texts: ClassTexts, load_weights: bool = True) -> DFERCLIP:
    """Create the backbone (loading `cfg.pretrained` if `load_weights`) and assemble the model.

    The returned config has `image_size` filled in from the backbone.
    """
    if not isinstance(texts, ClassTexts):
        raise ModelConfigError(f"texts must be ClassTexts, got {type(texts).__name__}")
    backbone = create_backbone(cfg, load_weights=load_weights)
    if cfg.image_size is None:
        cfg = ModelConfig(**{**cfg.to_dict(), "image_size": backbone.image_size})
    model = DFERCLIP(cfg, texts, backbone)
    apply_peft(model.image_encoder, cfg.peft, cfg.backbone, rank=cfg.lora_rank, alpha=cfg.lora_alpha,
               hidden=cfg.adapter_dim)
    model.base_keys = backbone.own_keys(model.state_dict())  # after PEFT renamed the weights it wraps
    set_trainable(model)
    return model


def autocast_for(device: torch.device | str, precision: str = "fp32") -> contextlib.AbstractContextManager:
    """bf16/fp16 autocast on GPU; plain fp32 otherwise (CPU always runs fp32)."""
    device = torch.device(device)
    if precision not in ("fp32", "bf16", "fp16"):
        raise ModelConfigError(f"precision must be fp32, bf16 or fp16, got {precision!r}")
    if device.type != "cuda" or precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast("cuda", dtype=dtype)
