"""Scoring clips: a loader's logits gathered over ranks (test views averaged) and the metrics of a
split (UAR, WAR, per-class recall, confusion), and the one evaluation loader. Used by the training loop's evaluations
(`trainer.engine`), `trainer eval` / `predict` (`trainer.inference`) and `promptkit compare`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from trainer import metrics
from trainer.data.dataset import build_loader, to_model_input
from trainer.distributed import DistContext, EpochSampler, gather_outputs
from trainer.model import autocast_for


def eval_loader(dataset, batch: int, workers: int, ctx: DistContext | None = None, seed: int = 0):
    """The one evaluation loader: every clip of `dataset` once, in order, split over `ctx`'s ranks,
    with the EpochSampler `evaluate` reads the clip order back from."""
    rank, world_size = (ctx.rank, ctx.world_size) if ctx is not None else (0, 1)
    sampler = EpochSampler(len(dataset), shuffle=False, seed=seed, rank=rank, world_size=world_size)
    return build_loader(dataset, batch, shuffle=False, drop_last=False, workers=workers, seed=seed, sampler=sampler)


def evaluate(model: torch.nn.Module, loader, ctx: DistContext, precision: str = "fp32",
             on_batch: Callable[[int, int], None] | None = None,
             clip_texts=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of every clip in `loader`'s dataset, gathered over ranks: (indices (N,), logits (N, C)).
    `on_batch(done, total)` is called after each batch (progress). `clip_texts`: the dataset's
    `trainer.cliptexts.ClipTextFeatures`, for a model that fuses clip texts."""
    model.eval()
    indices, outputs = [], []
    sampler = loader.sampler.sampler  # EpochTagged -> EpochSampler
    order = iter(list(sampler))
    total = len(loader)
    with torch.no_grad():
        for done, (frames, _labels) in enumerate(loader, start=1):
            index = torch.tensor([next(order) for _ in range(len(_labels))])  # (b,) clips of this batch
            extra = {} if clip_texts is None else {"clip_text": clip_texts.rows(index)[0]}  # (b, E)
            with autocast_for(ctx.device, precision):
                x = to_model_input(frames, ctx.device)  # (b, T, 3, H, W), or (b, V, T, 3, H, W) with test views
                if x.dim() == 6:
                    b, v = x.shape[:2]
                    if extra:
                        extra["clip_text"] = extra["clip_text"].repeat_interleave(v, dim=0)  # (b*V, E)
                    logits = model(x.flatten(0, 1), **extra).view(b, v, -1).mean(dim=1)  # (b*V, C) -> (b, C)
                else:
                    logits = model(x, **extra)  # (b, C)
            outputs.append(logits.float().cpu())
            indices.append(index)
            if on_batch is not None:
                on_batch(done, total)
    return gather_outputs(torch.cat(indices), torch.cat(outputs), ctx)


def split_metrics(logits: torch.Tensor, labels: list[int], n_classes: int) -> dict[str, Any]:
    """UAR / WAR / per-class recall (percent, None for absent classes) and confusion matrix."""
    y_pred = logits.argmax(dim=1).numpy()
    cm = metrics.confusion_matrix(labels, y_pred, n_classes)  # (C, C), the one count all metrics derive from
    recall = metrics.recall_from_confusion(cm)
    return {
        "uar": metrics.uar_from_confusion(cm),
        "war": metrics.war_from_confusion(cm),
        "per_class_recall": [None if math.isnan(r) else float(r) for r in recall],
        "confusion": cm.tolist(),
    }
