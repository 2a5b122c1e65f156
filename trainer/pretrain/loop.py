"""Contrastive (CLIP) pretraining of the tiny face-CLIP on the face world's frame-caption pairs.

The model is a plain open_clip `CLIP` built from `trainer.model.tinyface.TINYFACE_CFG`, with CLIP's own BPE tokenizer, so
everything downstream (prompt learner, text-length cut, checkpoints, `interpret`) works unchanged.
Pairs are rendered once (seeded, in worker processes), then the loop runs symmetric InfoNCE with a
learned temperature, AdamW, warm-up and cosine decay, on batches with a mild crop/flip/brightness
augmentation that covers what `trainer run`'s `light` preset does to clips.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from promptkit.tokens import CONTEXT_LENGTH, EOS_ID, SOS_ID
from promptkit.tokens import encode_text as encode_bpe

from trainer.model.backbone import OPENAI_MEAN, OPENAI_STD
from trainer.model.tinyface import tinyface_cfg
from trainer.pretrain.config import PretrainConfig, PretrainError
from trainer.world.pairs import render_pairs

log = logging.getLogger(__name__)

MEAN = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)  # (1, 3, 1, 1), CLIP's input normalisation
STD = torch.tensor(OPENAI_STD).view(1, 3, 1, 1)


@dataclass
class PretrainResult:
    model: nn.Module
    steps: int
    seconds: float
    render_seconds: float
    final_loss: float
    retrieval: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)


def build_tinyface(image_size: int | None = None) -> nn.Module:
    from open_clip.model import CLIP

    return CLIP(**tinyface_cfg(image_size), quick_gelu=True)


def token_ids(text: str) -> list[int]:
    """CLIP BPE ids of `text` with SOS and EOS (promptkit.tokens owns the tokenizer)."""
    return [SOS_ID, *encode_bpe(text), EOS_ID]


def tokenize(texts: list[str], context_length: int = CONTEXT_LENGTH) -> torch.Tensor:
    """CLIP BPE tokens `(N, context_length)`; a caption longer than the context is an error, never cut."""
    out = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = token_ids(text)
        if len(ids) > context_length:
            raise PretrainError(f"caption {text[:60]!r} is {len(ids)} tokens, more than the text context ({context_length})")
        out[i, :len(ids)] = torch.tensor(ids)
    return out


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 `(B, H, W, 3)` -> float `(B, 3, H, W)`, CLIP mean/std."""
    x = images.permute(0, 3, 1, 2).float() / 255.0
    return (x - MEAN) / STD


def augment(images: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """uint8 `(B, H, W, 3)` -> normalised float `(B, 3, size, size)` with crop, flip and brightness."""
    from torchvision.ops import roi_align

    b, h = images.shape[0], images.shape[1]
    x = images.permute(0, 3, 1, 2).float() / 255.0  # (B, 3, H, H)
    area = torch.empty(b).uniform_(0.6, 1.0, generator=gen)
    ratio = torch.empty(b).uniform_(0.9, 1.1, generator=gen)
    w = (area * ratio).sqrt().clamp(max=1.0) * h
    hh = (area / ratio).sqrt().clamp(max=1.0) * h
    x0 = torch.rand(b, generator=gen) * (h - w)
    y0 = torch.rand(b, generator=gen) * (h - hh)
    boxes = torch.stack([torch.arange(b, dtype=torch.float), x0, y0, x0 + w, y0 + hh], dim=1)  # (B, 5)
    x = roi_align(x, boxes, output_size=size, spatial_scale=1.0, sampling_ratio=2, aligned=True)  # (B, 3, S, S)
    flip = torch.rand(b, generator=gen) < 0.5
    x[flip] = x[flip].flip(-1)
    x = x * torch.empty(b, 1, 1, 1).uniform_(0.8, 1.2, generator=gen)
    return (x.clamp(0, 1) - MEAN) / STD


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, rest = [], []
    for name, p in model.named_parameters():
        no_decay = p.ndim < 2 or "token_embedding" in name or "positional_embedding" in name or "logit_scale" in name
        (rest if no_decay else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def _lr_at(step: int, cfg: PretrainConfig) -> float:
    warm = max(1, int(cfg.warmup * cfg.steps))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    progress = (step - warm) / max(1, cfg.steps - warm)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


def encode_text(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's text path run only up to the longest caption's EOS (exact: the mask is causal)."""
    length = int(tokens.argmax(dim=1).max()) + 1
    tokens = tokens[:, :length]  # (B, L)
    x = model.token_embedding(tokens) + model.positional_embedding[:length]  # (B, L, W)
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:length, :length]))
    pooled = x[torch.arange(len(tokens)), tokens.argmax(dim=1)]  # (B, W) at EOS, the largest id
    return pooled @ model.text_projection  # (B, E)


def soft_targets(actions: torch.Tensor, sharpness: float) -> torch.Tensor:
    """Targets `(B, B)` of the contrastive loss: caption j is a partial match of image i by how much
    the two captions say alike (cosine of their action vectors); identical captions match fully."""
    a = F.normalize(actions, dim=-1)  # (B, A)
    return torch.softmax(sharpness * (a @ a.t()), dim=1)  # (B, B), rows sum to 1


def clip_loss(model: nn.Module, images: torch.Tensor, tokens: torch.Tensor, actions: torch.Tensor | None = None,
              sharpness: float = 10.0) -> torch.Tensor:
    """Symmetric InfoNCE; with `actions`, captions that say the same are positives too."""
    img = F.normalize(model.encode_image(images), dim=-1)  # (B, E)
    txt = F.normalize(encode_text(model, tokens), dim=-1)  # (B, E)
    logits = model.logit_scale.exp().clamp(max=100) * img @ txt.t()  # (B, B)
    target = torch.eye(len(images)) if actions is None else soft_targets(actions, sharpness)  # (B, B)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target.t())) / 2


@torch.no_grad()
def retrieval(model: nn.Module, images: np.ndarray, texts: list[str], actions: np.ndarray,
              size: int) -> dict[str, float]:
    """Image-to-text top-1 over a held-out pool: the image's own caption, and a caption that says
    the same actions (captions differ in synonyms, order and appearance words)."""
    model.eval()
    img = F.normalize(model.encode_image(_resize(normalize(torch.from_numpy(images)), size)), dim=-1)
    txt = F.normalize(encode_text(model, tokenize(texts)), dim=-1)
    best = (img @ txt.t()).argmax(dim=1).tolist()  # (N,)
    exact = float(np.mean([b == i for i, b in enumerate(best)]))
    same = float(np.mean([np.array_equal(actions[b], actions[i]) for i, b in enumerate(best)]))
    model.train()
    return {"i2t_top1": exact, "i2t_top1_same_actions": same, "pool": len(texts)}


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    return x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)


def pretrain(cfg: PretrainConfig, progress: Callable[[dict], None] | None = None) -> PretrainResult:
    """Render the pairs, train the tiny face-CLIP, measure retrieval on held-out pairs."""
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    images, texts, actions = render_pairs(cfg.pairs, cfg.render_size, cfg.seed, workers=cfg.workers)
    eval_images, eval_texts, eval_actions = render_pairs(cfg.eval_pairs, cfg.render_size, cfg.seed + 1_000_003, workers=1)
    actions = torch.from_numpy(actions)  # (N, A)
    tokens = tokenize(texts)  # (N, 77)
    render_seconds = time.perf_counter() - t0
    model = build_tinyface(cfg.image_size)
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    gen = torch.Generator().manual_seed(cfg.seed)
    all_images = torch.from_numpy(images)  # (N, S, S, 3) uint8
    history, loss_avg = [], None
    t1 = time.perf_counter()
    for step in range(cfg.steps):
        idx = torch.randint(len(all_images), (cfg.batch,), generator=gen)
        x = augment(all_images[idx], cfg.image_size, gen)  # (B, 3, S, S)
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, cfg)
        loss = clip_loss(model, x, tokens[idx], actions[idx] if cfg.soft_targets else None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_avg = loss.item() if loss_avg is None else 0.95 * loss_avg + 0.05 * loss.item()
        if progress is not None and (step + 1) % cfg.log_every == 0:
            row = {"step": step + 1, "loss": round(loss_avg, 4), "lr": _lr_at(step, cfg),
                   "seconds": round(time.perf_counter() - t1, 1)}
            history.append(row)
            progress(row)
    seconds = time.perf_counter() - t0
    result = retrieval(model, eval_images, eval_texts, eval_actions, cfg.image_size)
    model.eval()
    return PretrainResult(model, cfg.steps, seconds, render_seconds, float(loss_avg or 0.0), result, history)
