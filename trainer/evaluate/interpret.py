"""What a learned context "says": the vocabulary tokens nearest to each learned context vector.

The context vectors live in CLIP's token-embedding space, so the nearest rows of the frozen
token-embedding table (by cosine or L2) give a rough reading of each position. The table is read
from the backbone weights (the run's own `pretrained` or `--pretrained`); checkpoints do not hold
it. Without weights the vocabulary falls back to the tokens of the class texts, whose embeddings
every checkpoint carries (`prompt_learner.embeddings`), and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from promptkit.tokens import EOS_ID, SOS_ID, decode_tokens

from trainer.errors import EvalError
from trainer.evaluate.common import write_csv, write_json
from trainer.inference import load_for_inference, resolve_checkpoint
from trainer.model.backbone import create_backbone
from trainer.model.config import ModelConfig
from trainer.model.families import family
from trainer.world.captions import caption_token_ids

METRICS = ("cosine", "l2")
SPECIAL_IDS = (SOS_ID, EOS_ID)


@dataclass
class InterpretResult:
    """Per class (or `shared` for a generic context), per position: the nearest tokens."""
    checkpoint: str
    metric: str
    top_k: int
    vocabulary: str  # "full (N tokens) from WEIGHTS" or "class texts only (N tokens)"
    vocabulary_size: int
    class_specific: bool
    classes: list[str]
    contexts: list[dict[str, Any]] = field(default_factory=list)  # {"class", "positions": [[{token, id, score}]], "reading"}

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def interpret(path: str | Path, top_k: int = 5, metric: str = "cosine", pretrained: str | None = None,
              full_vocab: bool = False) -> InterpretResult:
    """Nearest vocabulary tokens to every learned context vector of a checkpoint (or run folder)."""
    if metric not in METRICS:
        raise EvalError(f"--metric must be one of {', '.join(METRICS)}; got {metric!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise EvalError(f"--top-k must be an integer >= 1; got {top_k!r}")
    ckpt = resolve_checkpoint(path)
    # a PEFT delta is built over its base weights: `pretrained` names them too when they moved
    model, _state, classes, _frames = load_for_inference(ckpt, torch.device("cpu"), pretrained,
                                                         base_option="--pretrained")
    learner = model.prompt_learner
    if learner is None or learner.ctx is None:
        raise EvalError(f"{ckpt} has no learned context (mode {model.config.mode!r}, n_ctx "
                        f"{model.config.effective_n_ctx}); only runs with learned context can be interpreted")
    ids, table, vocabulary = vocabulary_table(model, pretrained, full_vocab)
    specific = learner.ctx.dim() == 3
    k = min(top_k, len(ids))
    result = InterpretResult(str(ckpt), metric, k, vocabulary, len(ids), specific, list(classes))
    negative = model.negative_learner  # --negatives runs: the contexts before the negative descriptions too
    for suffix, each in (("", learner), (" (negative)", negative if negative is not None and negative.ctx is not None else None)):
        if each is None:
            continue
        ctx = each.ctx.detach().float()  # (n_cls, M, D) or (M, D)
        groups = ctx if specific else ctx.unsqueeze(0)  # (G, M, D)
        names = list(classes) if specific else ["shared"]
        for name, vectors in zip(names, groups):
            scores, index = nearest(vectors, table, k, metric)  # (M, k), (M, k)
            positions = [[_token(int(ids[j]), float(s)) for s, j in zip(srow, irow)]
                         for srow, irow in zip(scores.tolist(), index.tolist())]
            result.contexts.append({"class": name + suffix, "positions": positions,
                                    "reading": " ".join(p[0]["token"] for p in positions)})
    return result


def nearest(vectors: Any, table: Any, k: int, metric: str) -> tuple[Any, Any]:
    """(M, D) against (V, D) -> top-k scores and row indices, each (M, k); cosine high / L2 low first."""
    if metric == "cosine":
        sims = F.normalize(vectors, dim=-1) @ F.normalize(table, dim=-1).t()  # (M, V)
        return torch.topk(sims, k, dim=1)
    dists = torch.cdist(vectors, table)  # (M, V)
    scores, index = torch.topk(dists, k, dim=1, largest=False)
    return scores, index


def vocabulary_table(model: Any, pretrained: str | None, full_vocab: bool = False) -> tuple[Any, Any, str]:
    """(token ids (V,), embeddings (V, D), description) for the nearest-token search. The tiny
    face-CLIP's text side only ever saw the world's captions (its other rows are untrained noise), so
    for it the search is over the caption vocabulary unless `full_vocab`."""
    learner = model.prompt_learner
    weights = pretrained or model.config.pretrained
    if weights:
        table = _full_table(model, weights)  # (49408, D)
        _check_table(table, learner, weights)
        keep = torch.ones(table.shape[0], dtype=torch.bool)
        keep[list(SPECIAL_IDS)] = False
        if family(model.config.backbone).vocabulary == "world" and not full_vocab:
            world = torch.zeros_like(keep)
            world[sorted(caption_token_ids())] = True
            ids = torch.nonzero(keep & world).squeeze(1)  # (V,)
            return ids, table[ids].float(), f"the face world's captions ({len(ids)} tokens) from {weights}"
        ids = torch.nonzero(keep).squeeze(1)  # (V,)
        return ids, table[ids].float(), f"full ({len(ids)} tokens) from {weights}"
    token_ids = learner.token_ids  # (n_cls, L0)
    rows: dict[int, Any] = {}
    for c in range(token_ids.shape[0]):
        for pos in range(1, int((token_ids[c] == SPECIAL_IDS[1]).nonzero()[0])):
            rows.setdefault(int(token_ids[c, pos]), learner.embeddings[c, pos])
    if not rows:
        raise EvalError("the checkpoint's class texts hold no tokens to compare with; pass --pretrained WEIGHTS")
    ids = torch.tensor(sorted(rows))
    table = torch.stack([rows[i] for i in sorted(rows)]).float()  # (V, D)
    note = f"class texts only ({len(ids)} tokens; the run has no pretrained weights to read the full vocabulary from, pass --pretrained)"
    return ids, table, note


def _full_table(model: Any, weights: str) -> Any:
    cfg = ModelConfig(**{**model.config.to_dict(), "pretrained": weights, "mode": "zeroshot", "peft": "none",
                         "negatives": False, "multi_descriptions": False})  # only the backbone's table is read
    backbone = create_backbone(cfg)
    return backbone.clip.token_embedding.weight.detach()


def _check_table(table: Any, learner: Any, weights: str) -> None:
    """The table must give back the checkpoint's own frozen text embeddings."""
    ids = learner.token_ids  # (n_cls, L0)
    if table.shape[1] != learner.embeddings.shape[-1]:
        raise EvalError(f"the weights {weights} have {table.shape[1]}-d token embeddings but the model uses "
                        f"{learner.embeddings.shape[-1]}-d; pass the weights the run was trained from")
    expect = table[ids].to(learner.embeddings.dtype)  # (n_cls, L0, D)
    if not torch.allclose(expect, learner.embeddings, atol=1e-4, rtol=1e-3):
        raise EvalError(f"the token embeddings in {weights} are not the ones this run was trained with; "
                        "pass the run's own pretrained weights with --pretrained")


def _token(token_id: int, score: float) -> dict[str, Any]:

    return {"token": decode_tokens([token_id]) or f"<{token_id}>", "id": token_id, "score": score}


def save_interpretation(result: InterpretResult, out: Path | None) -> list[Path]:
    """interpret.json + interpret.csv: next to the checkpoint, or at `out` (FILE.json / FILE.csv / a folder)."""
    if out is None:
        base = Path(result.checkpoint).parent / "interpret"
    else:
        out = Path(out).expanduser()
        if out.is_dir() or not out.suffix:
            base = out / "interpret"
        elif out.suffix.lower() in (".json", ".csv"):
            base = out.with_suffix("")
        else:
            raise EvalError(f"--out takes a .json or .csv file name or a folder; got {out}")
    rows = [[ctx["class"], pos + 1, rank + 1, tok["token"], tok["id"], f"{tok['score']:.6f}"]
            for ctx in result.contexts for pos, tokens in enumerate(ctx["positions"]) for rank, tok in enumerate(tokens)]
    json_path = write_json(base.with_name(base.name + ".json"), result.to_dict())
    csv_path = write_csv(base.with_name(base.name + ".csv"), ["class", "position", "rank", "token", "token_id", result.metric], rows)
    return [json_path, csv_path]
