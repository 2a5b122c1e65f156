"""CLIP text embeddings of a descriptor set, and which classes' descriptions sit closest.

`embed_set` encodes every class description (and, optionally, every single descriptor) with the
trainer's frozen text path: CLIP token embeddings -> text transformer -> pooled at EOS -> projection,
then L2-normalised. The class-by-class cosine similarity of the descriptions names the pairs a
model will find hardest to tell apart from text alone.

"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from promptkit.store import Store, resolve_store_root

from trainer.errors import EvalError
from trainer.evaluate.common import (
    save_figure,
    write_csv,
    write_json,
    write_output,
)
from trainer.model.backbone import create_backbone
from trainer.model.config import ModelConfig
from trainer.model.families import check_backbone_name, family
from trainer.model.prompt import PromptLearner
from trainer.model.text_encoder import TextEncoder
from trainer.model.texts import ClassTexts

FORMATS = ("npy", "pt", "parquet")


# ---------------------------------------------------------------------- text encoding
def load_backbone(backbone: str, pretrained: str | None, quick_gelu: bool = True, seed: int = 0):
    """The open_clip backbone (trainer.model.backbone.Backbone); random weights are seeded."""
    cfg = ModelConfig(backbone=backbone, pretrained=pretrained, quick_gelu=quick_gelu, mode="zeroshot")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_backbone(cfg)


def encode_texts(backbone: Any, texts: Sequence[str], batch: int = 128) -> "torch.Tensor":
    """L2-normalised text features (N, E) float32 of `texts`, through the trainer's frozen text path."""
    if not texts:
        raise EvalError("nothing to encode: the descriptor set holds no texts")
    encoder = TextEncoder(backbone.clip).eval()
    parts = []
    with torch.no_grad():
        for start in range(0, len(texts), batch):
            chunk = list(texts[start:start + batch])
            keys = tuple(f"text {start + i}" for i in range(len(chunk)))
            learner = PromptLearner(backbone.clip.token_embedding, ClassTexts(keys, tuple(chunk)), 0,
                                    context_length=encoder.context_length)
            prompts = learner(int(learner.eos_index.max()) + 1)  # (n, l, D)
            feats = encoder(prompts, learner.eos_index)  # (n, E)
            parts.append(F.normalize(feats.float(), dim=-1))
    return torch.cat(parts)  # (N, E)


# ---------------------------------------------------------------------- embed a set
@dataclass
class EmbedConfig:
    """What `promptkit embed` encodes and how it saves it."""
    ref: str
    backbone: str = "ViT-B-32"
    pretrained: str | None = None
    quick_gelu: bool = True
    store: str | None = None
    class_set: str | None = None
    descriptors: bool = False
    fmt: str = "npy"
    top_k: int = 5
    seed: int = 0
    random_weights: bool = False  # a backbone without --pretrained is refused unless this is True

    def __post_init__(self) -> None:
        if not isinstance(self.ref, str) or not self.ref.strip():
            raise EvalError(f"give a descriptor set such as mafw/v1; got {self.ref!r}")
        if self.fmt not in FORMATS:
            raise EvalError(f"--format must be one of {', '.join(FORMATS)}; got {self.fmt!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1:
            raise EvalError(f"--top-k must be an integer >= 1; got {self.top_k!r}")


@dataclass
class EmbedResult:
    """Embeddings (N, E) of `rows`; `similarity` (C, C) of the class descriptions; closest pairs."""
    set_id: str
    content_hash: str
    classes: list[str]
    rows: list[dict[str, Any]]  # {"class", "kind": description|descriptor, "text"} per embedding row
    embeddings: Any  # torch.Tensor (N, E) float32, L2-normalised
    similarity: Any  # torch.Tensor (C, C) cosine similarity of the class descriptions
    pairs: list[dict[str, Any]]  # closest class pairs, most similar first
    backbone: str = ""
    pretrained: str | None = None
    files: dict[str, str] = field(default_factory=dict)


def closest_pairs(similarity: Any, classes: Sequence[str], top_k: int) -> list[dict[str, Any]]:
    """The `top_k` most similar distinct class pairs (i < j) of a (C, C) similarity matrix."""
    n = len(classes)
    scored = [(float(similarity[i, j]), i, j) for i in range(n) for j in range(i + 1, n)]
    scored.sort(key=lambda item: (-item[0], item[1], item[2]))
    return [{"rank": r + 1, "a": classes[i], "b": classes[j], "cosine": s} for r, (s, i, j) in enumerate(scored[:top_k])]


def embed_set(cfg: EmbedConfig) -> EmbedResult:
    """Load the set, encode descriptions (and descriptors), compare the classes."""
    ds = Store(resolve_store_root(cfg.store)).load(cfg.ref, cfg.class_set)
    rows = [{"class": e.name, "kind": "description", "text": e.description} for e in ds.classes]
    if cfg.descriptors:
        rows += [{"class": e.name, "kind": "descriptor", "text": d} for e in ds.classes for d in e.descriptors]
    check_backbone_name(cfg.backbone)  # an unknown name is that, not "has no weights"
    if cfg.pretrained is None and family(cfg.backbone).has_weights and not cfg.random_weights:
        raise EvalError(f"--backbone {cfg.backbone} has no weights: pass --pretrained (a weights file or folder, "
                        "or an open_clip tag such as openai), or --random-weights for a seeded random backbone "
                        "(meaningless similarities)")
    backbone = load_backbone(cfg.backbone, cfg.pretrained, cfg.quick_gelu, cfg.seed)
    embeddings = encode_texts(backbone, [row["text"] for row in rows])  # (N, E)
    classes = [e.name for e in ds.classes]
    desc = embeddings[: len(classes)]  # (C, E)
    similarity = desc @ desc.t()  # (C, C)
    pairs = closest_pairs(similarity, classes, cfg.top_k)
    return EmbedResult(ds.set_id, ds.content_hash, classes, rows, embeddings, similarity, pairs,
                       cfg.backbone, cfg.pretrained)


def save_embeddings(result: EmbedResult, out: Path, fmt: str) -> dict[str, str]:
    """Write embeddings.<fmt>, index.json, similarity.csv/png, closest_pairs.json/csv into `out`."""
    out = Path(out)
    files = {"embeddings": str(_save_matrix(result, out, fmt))}
    index = {
        "set_id": result.set_id, "content_hash": result.content_hash, "backbone": result.backbone,
        "pretrained": result.pretrained, "normalized": True, "shape": list(result.embeddings.shape),
        "embeddings_file": Path(files["embeddings"]).name, "classes": result.classes, "rows": result.rows,
    }
    files["index"] = str(write_json(out / "index.json", index))
    sim = result.similarity.tolist()
    files["similarity_csv"] = str(write_csv(
        out / "similarity.csv", ["class", *result.classes],
        [[name, *(f"{v:.6f}" for v in row)] for name, row in zip(result.classes, sim)]))
    files["heatmap"] = str(save_figure(similarity_figure(sim, result.classes, result.pairs, result.set_id),
                                       out / "similarity.png"))
    files["pairs_json"] = str(write_json(out / "closest_pairs.json", result.pairs))
    files["pairs_csv"] = str(write_csv(out / "closest_pairs.csv", ["rank", "a", "b", "cosine"],
                                       [[p["rank"], p["a"], p["b"], f"{p['cosine']:.6f}"] for p in result.pairs]))
    result.files = files
    return files


def _save_matrix(result: EmbedResult, out: Path, fmt: str) -> Path:

    array = result.embeddings.detach().cpu().float()
    if fmt == "npy":
        return write_output(out / "embeddings.npy", lambda h: np.save(h, array.numpy()))
    if fmt == "pt":
        payload = {"embeddings": array, "rows": result.rows, "set_id": result.set_id}
        return write_output(out / "embeddings.pt", lambda h: torch.save(payload, h))
    import pandas as pd

    frame = pd.DataFrame(result.rows)
    frame["embedding"] = [row.tolist() for row in array.numpy()]
    return write_output(out / "embeddings.parquet", lambda h: frame.to_parquet(h, index=False))


def similarity_figure(sim: list[list[float]], classes: Sequence[str], pairs: Sequence[dict[str, Any]], title: str):
    """Class-by-class cosine heatmap, values in the cells, the closest pairs listed below."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    n = len(classes)
    off = [sim[i][j] for i in range(n) for j in range(n) if i != j] or [0.0]
    fig = Figure(figsize=(2.6 + 0.75 * n, 1.6 + 0.65 * n + 0.22 * len(pairs)), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(sim, cmap="viridis", vmin=min(off), vmax=max(off))
    ax.set_xticks(range(n), classes, rotation=45, ha="right")
    ax.set_yticks(range(n), classes)
    ax.set_title(f"cosine similarity of class descriptions ({title})")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{sim[i][j]:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if sim[i][j] > (min(off) + max(off)) / 2 else "white")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    index = {name: i for i, name in enumerate(classes)}
    for pair in pairs:  # outline the closest pairs
        i, j = index[pair["a"]], index[pair["b"]]
        for r, c in ((i, j), (j, i)):
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
    lines = [f"{p['rank']}. {p['a']} - {p['b']}: {p['cosine']:.3f}" for p in pairs]
    ax.set_xlabel("closest pairs:  " + "   ".join(lines[:3]) + ("\n" + "   ".join(lines[3:]) if lines[3:] else ""),
                  fontsize=8)
    return fig
