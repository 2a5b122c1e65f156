"""Clip texts in a run: each clip's description by a vision LLM (`promptkit describe-clips`), as a
feature the video is trained against (`align`) or fused with (`fuse`). Design: docs/clip-texts.md.

- **align** (default): an auxiliary symmetric InfoNCE loss between the batch's video features and
  its clips' text features (temperature: the model's), weighted by `clip_text_weight` and added to
  the class cross-entropy. The texts shape the video feature during training only; the trained
  model classifies a clip from its frames alone, so test clips need no texts and the model exports
  and predicts as any other.
- **fuse**: the video feature becomes `normalise(video) + weight x text feature` before it meets the
  class texts, in training and at test time; the model then needs a text for every test clip.

A clip's text is found by its id (`trainer.data.annotations.clip_id`) in the set. The rules:
- a clip of a list the mode reads (align: train; fuse: train, val, test) that the set does not hold
  at all is refused: the set was made for other clips;
- a clip the set holds as missing (the LLM refused, answered nothing or named an emotion) has no
  text: align leaves it out of the auxiliary loss, fuse gives it a zero text feature (its video
  feature alone). How many is said once when the run starts.
Texts longer than the text context (77 tokens) are cut there, and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from trainer.data.annotations import clip_id
from trainer.errors import InputError

SPLITS = ("train", "val", "test")


@dataclass
class ClipTextFeatures:
    """One split's clip-text features `(N, E)` (zero rows: no text) and which clips have one `(N,)`."""

    feats: torch.Tensor
    has_text: torch.Tensor

    def rows(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The features `(b, E)` and the mask `(b,)` of the clips `index` (b,) of this split."""
        index = index.to(self.feats.device)
        return self.feats[index], self.has_text[index]


@dataclass
class RunClipTexts:
    """The clip texts of a run, per split, and what the start of the run says about them."""

    set_id: str
    content_hash: str
    splits: dict[str, ClipTextFeatures]
    notes: list[str] = field(default_factory=list)
    mode: str = "align"  # model.clip_text_mode
    weight: float = 0.5  # model.clip_text_weight

    def info(self) -> dict[str, Any]:
        """What checkpoints and summaries record."""
        return {"set_id": self.set_id, "content_hash": self.content_hash, "mode": self.mode}

    def train_forward(self, model, x: torch.Tensor, index: torch.Tensor, scale) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A train chunk through `model` (the engine's, DDP-wrapped or not): logits (b, C) float32 and,
        with align, the weighted auxiliary loss (summed over the chunk's clips with a text)."""
        text, has = self.splits["train"].rows(index)  # (b, E), (b,)
        if self.mode == "fuse":
            return model(x, clip_text=text).float(), None
        logits, video = model(x, with_video=True)  # (b, C), (b, E)
        return logits.float(), self.weight * align_loss(video, text, has, scale)

    def eval_features(self, split: str) -> ClipTextFeatures | None:
        """What evaluating `split` feeds the model: its clips' features when it fuses them, else None."""
        return self.splits[split] if self.mode == "fuse" else None


def loader_order(loader):
    """An iterator over the clip indices a train loader yields this epoch, in its order (its
    `EpochTagged` sampler is a pure function of seed, epoch and resume point)."""
    return iter([index for index, _epoch in loader.sampler])


def load_clip_text_set(ref: str, store: str | Path | None):
    """The clip-text set `ref` (NAME[/vN] or a .json file) from the user store `store`."""
    from promptkit.cliptexts import ClipTextStore
    from promptkit.store import resolve_store_root

    return ClipTextStore(resolve_store_root(store)).load(ref)


def texts_for(cts, records: Sequence, list_path: Path, data_root: str | Path | None, what: str) -> list[str | None]:
    """Each record's text (None: the set holds it as missing); an InputError when the set does not
    hold some clips at all."""
    ids = [clip_id(rec.path, list_path, data_root) for rec in records]
    absent = [i for i in ids if i not in cts.texts and i not in cts.missing]
    if absent:
        raise InputError(
            f"clip-text set {cts.set_id} has no entry for {len(absent)} of the {len(ids)} clips of {what} "
            f"(first: {absent[0]!r}); it was made for other clips: describe these with "
            f"`promptkit describe-clips --list {list_path}` (ids are paths relative to --data-root or the list's folder)")
    return [cts.texts.get(i) for i in ids]


def encode_split(model, texts: list[str | None], device: torch.device, batch: int = 256) -> tuple[ClipTextFeatures, int]:
    """Features of one split's texts with the model's frozen text tower; (features, texts cut)."""
    present = [i for i, t in enumerate(texts) if t is not None]
    dim = model.embed_dim
    feats = torch.zeros(len(texts), dim, dtype=torch.float32, device=device)  # (N, E)
    cut = 0
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(present), batch):
            rows = present[start:start + batch]
            out, n_cut = model.encode_clip_texts([texts[i] for i in rows])  # (b, E)
            feats[torch.tensor(rows, device=device)] = out.to(device)
            cut += n_cut
    finally:
        model.train(was_training)
    has = torch.zeros(len(texts), dtype=torch.bool, device=device)
    if present:
        has[torch.tensor(present, device=device)] = True
    return ClipTextFeatures(feats, has), cut


def run_clip_texts(model, inputs, config, device: torch.device) -> RunClipTexts | None:
    """The run's clip-text features for the splits its mode reads, or None without --clip-texts."""
    mcfg = config.model
    if mcfg.clip_texts is None:
        return None
    cts = load_clip_text_set(mcfg.clip_texts, config.text.store)
    lists = {"train": Path(inputs.text_info["train_list"]), "val": Path(inputs.text_info["train_list"]),
             "test": Path(inputs.text_info["test_list"])}
    wanted = SPLITS if mcfg.fuses_clip_texts else ("train",)
    splits, notes, cut = {}, [], 0
    for split in wanted:
        records = getattr(inputs, split)
        if not records:
            continue
        texts = texts_for(cts, records, lists[split], config.data.data_root, f"the {split} list {lists[split].name}")
        splits[split], n_cut = encode_split(model, texts, device)
        cut += n_cut
        missing = sum(t is None for t in texts)
        if missing:
            rule = "left out of the auxiliary loss" if not mcfg.fuses_clip_texts else "classified from the video alone"
            notes.append(f"clip texts: {missing} of {len(texts)} {split} clips have none in {cts.set_id} "
                         f"(recorded as missing); they are {rule}")
    if cut:
        notes.append(f"clip texts: {cut} texts were longer than the text context and were cut to it")
    return RunClipTexts(cts.set_id, cts.content_hash, splits, notes, mcfg.clip_text_mode, mcfg.clip_text_weight)


def align_loss(video: torch.Tensor, text: torch.Tensor, has: torch.Tensor, scale: float) -> torch.Tensor:
    """Summed symmetric InfoNCE over the clips that have a text: video `(b, E)` unnormalised, text
    `(b, E)` normalised, has `(b,)` bool; 0 when fewer than two clips have one (no negatives)."""
    if int(has.sum()) < 2:
        return video.sum() * 0.0  # keeps the graph (and DDP's gradient buckets) connected
    v = F.normalize(video[has].float(), dim=-1)  # (k, E)
    t = text[has].float()  # (k, E)
    logits = scale * v @ t.t()  # (k, k)
    target = torch.arange(len(v), device=v.device)
    return 0.5 * (F.cross_entropy(logits, target, reduction="sum") + F.cross_entropy(logits.t(), target, reduction="sum"))
