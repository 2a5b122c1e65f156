"""The whole `trainer pretrain` job: check, train, measure, write weights and card."""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trainer.pretrain.artifacts import check_out, save_pretrained
from trainer.pretrain.config import PretrainConfig, PretrainError
from trainer.pretrain.loop import encode_text, normalize, pretrain, token_ids, tokenize
from trainer.world.aus import CLASS_AUS, CLASSES, sample_apex
from trainer.world.captions import ABSENT, BLINK, PHRASES, TEMPLATES
from trainer.world.clips import HELD_OUT_STYLES, render_frame, sample_clip
from trainer.world.pairs import RANDOM_SHARE, VARIED_SHARE


def check_caption_fit(context_length: int) -> int:
    """Tokens (with SOS/EOS) of the longest caption the world can write; PretrainError if that
    exceeds the text context. Worst cases: the most actions a face shows, with a blink and one
    part said to be at rest; or four actions, a blink and two parts at rest."""
    most = max(len(t) for t in CLASS_AUS.values())
    longest = sorted((max(p, key=len) for p in PHRASES.values()), key=len, reverse=True)
    absent = sorted((max(a, key=len) for a in ABSENT.values()), key=len, reverse=True)
    blink = max(BLINK, key=len)
    cases = [longest[:most] + [blink, absent[0]], longest[:4] + [blink, *absent[:2]]]
    look = "olive square face with hair on an orange background"
    n = 0
    for phrases in cases:
        joined = ", ".join(phrases[:-1]) + " and " + phrases[-1]
        for template, _ in TEMPLATES:
            text = template.format(aus=joined, look=look, skin="olive", shape="square", bg="orange")
            n = max(n, len(token_ids(text)))
    if n > context_length:
        raise PretrainError(f"the caption vocabulary does not fit the text context: the longest caption is {n} tokens "
                            f"with SOS/EOS, the model reads {context_length}")
    return n


@torch.no_grad()
def world_zero_shot(model: nn.Module, per_class: int, image_size: int, seed: int = 4242,
                    style: str = "cartoon") -> dict:
    """Zero-shot UAR (%) on world test clips drawn in `style`: shipped dfew/v1 descriptions against
    class names."""
    from promptkit.store import Store, resolve_store_root

    from trainer.metrics import uar

    model.eval()
    feats, labels = [], []
    for label, name in enumerate(CLASSES):
        for i in range(per_class):
            rng = np.random.default_rng([seed, label, i])
            spec = sample_clip(rng, sample_apex(rng, name), 18, 48, style)
            ts = np.linspace(0, spec.n - 1, 8).round().astype(int)
            frames = torch.from_numpy(np.stack([render_frame(spec, int(t), 112, rng) for t in ts]))  # (8, H, W, 3)
            x = F.interpolate(normalize(frames), size=(image_size, image_size), mode="bilinear", antialias=True)
            f = F.normalize(model.encode_image(x), dim=-1).mean(0)  # (E,)
            feats.append(F.normalize(f, dim=0))
            labels.append(label)
    video = torch.stack(feats)  # (N, E)
    v1 = Store(resolve_store_root(None)).load("dfew/v1")
    out = {}
    for key, texts in (("descriptions dfew/v1", list(v1.descriptions)), ("class names", [f"{c}." for c in CLASSES])):
        text = F.normalize(encode_text(model, tokenize(texts)), dim=-1)  # (C, E)
        pred = (video @ text.t()).argmax(dim=1).tolist()
        out[key] = round(uar(labels, pred, len(CLASSES)), 2)
    return {"uar": out, "clips_per_class": per_class, "frames": 8, "clip_size": 112, "style": style}


def run_pretrain(cfg: PretrainConfig, out: Path, progress: Callable[[dict], None] | None = None) -> tuple[Path, dict]:
    out = check_out(out)
    check_caption_fit(77)
    t0 = time.perf_counter()
    result = pretrain(cfg, progress)
    zero_shot = world_zero_shot(result.model, cfg.eval_clips, cfg.image_size) if cfg.eval_clips else None
    held_out = {style: world_zero_shot(result.model, cfg.eval_clips, cfg.image_size, style=style)["uar"]
                for style in HELD_OUT_STYLES} if cfg.eval_clips else None
    from trainer.data.synthetic import _VERSION as RENDERER_VERSION
    from trainer.model.tinyface import tinyface_cfg

    card = {
        "model": "tinyface (open_clip CLIP)",
        "command": "trainer pretrain " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["pretrain"] else None,
        "config": cfg.__dict__,
        "data": {"renderer_version": RENDERER_VERSION, "style": "cartoon", "varied_look_share": VARIED_SHARE,
                 "pairs": cfg.pairs, "render_size": cfg.render_size, "random_au_share": RANDOM_SHARE, "seed": cfg.seed},
        "steps": result.steps, "final_loss": round(result.final_loss, 4),
        "seconds": round(time.perf_counter() - t0, 1), "render_seconds": round(result.render_seconds, 1),
        "retrieval": result.retrieval, "zero_shot": zero_shot, "zero_shot_held_out_styles": held_out,
        "normalize": "clip", "quick_gelu": True,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
    }
    return save_pretrained(out, result.model, tinyface_cfg(cfg.image_size), card)
