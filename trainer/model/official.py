"""Import the authors' released DFER-CLIP checkpoints (.pth) into a native checkpoint.

Their files come from `torch.save({"epoch", "state_dict", "best_acc", "optimizer", "recorder"})`
of a DataParallel-wrapped model, so keys carry a `module.` prefix and the recorder is an object
of a class from their main.py. We read them with weights_only, or with a restricted unpickler
when that refuses, never running pickled code.

Key mapping (theirs, after `module.` -> ours):
    image_encoder.*                         -> image_encoder.*            (OpenAI ViT == open_clip ViT)
    text_encoder.transformer.*              -> text_encoder.transformer.*
    text_encoder.positional_embedding       -> text_encoder.positional_embedding
    text_encoder.ln_final.*                 -> text_encoder.ln_final.*
    text_encoder.text_projection            -> text_encoder.text_projection
    clip_model_.logit_scale                 -> logit_scale
    prompt_learner.ctx                      -> prompt_learner.ctx
    prompt_learner.token_prefix | token_suffix -> prompt_learner.embeddings (concatenated)
    temporal_net.cls_token | pos_embedding  -> temporal.cls_token | pos_embedding
    temporal_net.temporal_transformer.layers.{i}.0.fn.norm.*        -> temporal.blocks.{i}.attn_norm.*
    temporal_net.temporal_transformer.layers.{i}.0.fn.fn.to_qkv.*   -> temporal.blocks.{i}.qkv.*
    temporal_net.temporal_transformer.layers.{i}.0.fn.fn.to_out.0.* -> temporal.blocks.{i}.proj.*
    temporal_net.temporal_transformer.layers.{i}.1.fn.norm.*        -> temporal.blocks.{i}.mlp_norm.*
    temporal_net.temporal_transformer.layers.{i}.1.fn.fn.net.0.*    -> temporal.blocks.{i}.fc1.*
    temporal_net.temporal_transformer.layers.{i}.1.fn.fn.net.3.*    -> temporal.blocks.{i}.fc2.*
The description tokens are not stored; `token_suffix` rows are exact rows of the token-embedding
table (`clip_model_.token_embedding.weight`), so matching them gives the tokens back.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from promptkit.classes import BUILTIN_CLASS_SETS
from promptkit.tokens import EOS_ID, SOS_ID, clip_tokenizer, decode_tokens, encode_text

from trainer.errors import CheckpointError, TrainerError
from trainer.model.checkpoint import load_state, save_model, strip_module_prefix, torch_load
from trainer.model.config import ModelConfig
from trainer.model.dferclip import build_model
from trainer.model.families import FAMILIES, TINY, tiny_model_cfg
from trainer.model.texts import ClassTexts

# label orders of the authors' datasets (DFEW/FERV39k: 7 classes, MAFW: 11), owned by promptkit.classes
CLASSES_7 = BUILTIN_CLASS_SETS["dfew"]
CLASSES_11 = BUILTIN_CLASS_SETS["mafw"]
_REQUIRED = ("prompt_learner.ctx", "prompt_learner.token_prefix", "prompt_learner.token_suffix", "temporal_net.cls_token")
_LAYER = re.compile(r"^temporal_net\.temporal_transformer\.layers\.(\d+)\.([01])\.fn\.(.+)$")
_LAYER_PARTS = {
    ("0", "norm"): "attn_norm", ("0", "fn.to_qkv"): "qkv", ("0", "fn.to_out.0"): "proj",
    ("1", "norm"): "mlp_norm", ("1", "fn.net.0"): "fc1", ("1", "fn.net.3"): "fc2",
}


@dataclass(frozen=True)
class ImportReport:
    """What `import_official` found and wrote."""

    source: Path
    output: Path
    backbone: str
    classes: tuple[str, ...]
    texts: tuple[str, ...]
    n_ctx: int
    class_specific: bool
    temporal_depth: int
    num_frames: int
    epoch: Any
    best_acc: Any


def read_official(path: str | Path) -> dict[str, Any]:
    """The checkpoint object, loaded without running pickled code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch_load(path, foreign=True)  # weights_only first, then placeholders for foreign globals
    except Exception as exc:  # noqa: BLE001 - not a torch file at all, or truncated
        raise CheckpointError(f"cannot read {path} as a PyTorch checkpoint: {str(exc)[:160]}") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} is not a DFER-CLIP checkpoint (holds a {type(obj).__name__}, not a dict)")
    return obj


def read_official_state(path: str | Path) -> dict[str, torch.Tensor]:
    return official_state(read_official(path), Path(path))


def official_state(obj: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """The model's state dict with DataParallel `module.` prefixes removed."""
    state = obj.get("state_dict", obj)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a DFER-CLIP checkpoint (its state_dict is not a mapping)")
    out = strip_module_prefix({k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, torch.Tensor)})
    missing = [k for k in _REQUIRED if k not in out]
    if missing:
        raise CheckpointError(
            f"{path} is not a DFER-CLIP checkpoint: it lacks {', '.join(missing)} "
            "(expected the authors' GenerateModel state dict)"
        )
    return out


def clip_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Their CLIP weights renamed to open_clip's CLIP keys (visual.*, transformer.*, ...)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("image_encoder."):
            out["visual." + key[len("image_encoder."):]] = value
        elif key.startswith("text_encoder."):
            out[key[len("text_encoder."):]] = value
    token = state.get("clip_model_.token_embedding.weight")
    if token is None:
        raise CheckpointError("the checkpoint lacks clip_model_.token_embedding.weight; cannot recover the prompt text")
    out["token_embedding.weight"] = token
    out["logit_scale"] = state.get("clip_model_.logit_scale", torch.tensor(math.log(1 / 0.07)))
    needed = ("visual.conv1.weight", "visual.positional_embedding", "positional_embedding", "text_projection", "ln_final.weight")
    for need in needed:
        if need not in out:
            raise CheckpointError(f"the checkpoint lacks the CLIP weight {need}; not a DFER-CLIP checkpoint")
    return out


def clip_dims(sd: dict[str, torch.Tensor]) -> dict[str, int]:
    """Architecture numbers read off the CLIP weights' shapes."""
    patch = int(sd["visual.conv1.weight"].shape[-1])
    grid = int(round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5))
    return {
        "embed_dim": int(sd["text_projection"].shape[1]),
        "vision_width": int(sd["visual.conv1.weight"].shape[0]),
        "vision_layers": _count_layers(sd, "visual.transformer.resblocks."),
        "patch_size": patch,
        "image_size": patch * grid,
        "text_width": int(sd["ln_final.weight"].shape[0]),
        "text_layers": _count_layers(sd, "transformer.resblocks."),
        "context_length": int(sd["positional_embedding"].shape[0]),
        "vocab_size": int(sd["token_embedding.weight"].shape[0]),
    }


def _count_layers(sd: dict[str, torch.Tensor], prefix: str) -> int:
    return len({k[len(prefix):].split(".")[0] for k in sd if k.startswith(prefix)})


def _cfg_dims(model_cfg: dict[str, Any]) -> dict[str, int] | None:
    v, t = model_cfg.get("vision_cfg", {}), model_cfg.get("text_cfg", {})
    if not isinstance(v.get("layers"), int) or "timm_model_name" in v or "hf_model_name" in t or model_cfg.get("custom_text"):
        return None
    return {
        "embed_dim": model_cfg["embed_dim"], "vision_width": v.get("width", 768), "vision_layers": v["layers"],
        "patch_size": v.get("patch_size", 16), "image_size": v.get("image_size", 224),
        "text_width": t.get("width", 512), "text_layers": t.get("layers", 12),
        "context_length": t.get("context_length", 77), "vocab_size": t.get("vocab_size", 49408),
    }


def match_backbone(dims: dict[str, int]) -> tuple[str, int]:
    """The backbone name (and image size) whose architecture has exactly these dimensions."""
    import open_clip
    from open_clip.factory import get_model_config

    for size in FAMILIES[TINY].image_sizes or ():
        if _cfg_dims(tiny_model_cfg(size)) == dims:
            return TINY, size
    names = sorted(open_clip.list_models(), key=lambda n: ("quickgelu" in n, len(n), n))
    for name in names:
        if _cfg_dims(get_model_config(name) or {}) == dims:
            return name, dims["image_size"]
    raise CheckpointError(
        f"no open_clip backbone has the checkpoint's CLIP dimensions {dims}; pass the backbone name explicitly"
    )


def recover_tokens(table: torch.Tensor, rows: torch.Tensor, sq_norms: torch.Tensor | None = None) -> list[int]:
    """Token ids whose embeddings equal `rows` (n, D), matched against `table` (V, D)."""
    table = table.float()
    rows = rows.float()
    sq_norms = (table * table).sum(1) if sq_norms is None else sq_norms  # (V,)
    dist = sq_norms[None, :] - 2 * rows @ table.t()  # (n, V), ||row||^2 dropped
    top = dist.topk(4, dim=1, largest=False).indices  # (n, 4)
    ids = []
    for i in range(rows.shape[0]):
        hit = next((int(c) for c in top[i] if torch.equal(table[c], rows[i])), None)
        if hit is None:
            near = int(top[i, 0])
            if torch.allclose(table[near], rows[i], rtol=1e-5, atol=1e-6):
                hit = near
            else:
                raise CheckpointError(
                    "a stored prompt embedding is not a row of the token-embedding table; "
                    "the checkpoint's prompt learner does not belong to its CLIP weights"
                )
        ids.append(hit)
    return ids


def recover_texts(state: dict[str, torch.Tensor]) -> tuple[list[str], list[list[int]]]:
    """Per class: the description text and its BPE ids, from token_prefix/token_suffix."""
    table = state["clip_model_.token_embedding.weight"].float()
    sq_norms = (table * table).sum(1)  # (V,)
    prefix, suffix = state["prompt_learner.token_prefix"], state["prompt_learner.token_suffix"]
    if prefix.dim() != 3 or suffix.dim() != 3 or prefix.shape[0] != suffix.shape[0]:
        raise CheckpointError(f"prompt buffers have unexpected shapes {tuple(prefix.shape)} and {tuple(suffix.shape)}")
    texts, all_ids = [], []
    for c in range(suffix.shape[0]):
        if recover_tokens(table, prefix[c], sq_norms) != [SOS_ID]:
            raise CheckpointError(f"the prompt of class {c} does not start with CLIP's start token; unexpected layout")
        ids = recover_tokens(table, suffix[c], sq_norms)
        if EOS_ID not in ids or any(t != 0 for t in ids[ids.index(EOS_ID) + 1:]):
            raise CheckpointError(f"the prompt of class {c} has no end token followed by padding; unexpected layout")
        desc = ids[: ids.index(EOS_ID)]
        texts.append(_text_for(desc, c))
        all_ids.append(desc)
    return texts, all_ids


def _text_for(ids: list[int], c: int) -> str:
    for text in (decode_tokens(ids), clip_tokenizer().decode(ids).strip()):
        if encode_text(text) == ids:
            return text
    raise CheckpointError(f"the recovered tokens of class {c} do not survive CLIP's tokenizer round trip")


def temporal_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {"temporal.cls_token": state["temporal_net.cls_token"], "temporal.pos_embedding": state["temporal_net.pos_embedding"]}
    for key, value in state.items():
        m = _LAYER.match(key)
        if not m:
            continue
        layer, sub, rest = m.groups()
        stem, _, leaf = rest.rpartition(".")
        part = _LAYER_PARTS.get((sub, stem))
        if part is None:
            raise CheckpointError(f"unknown temporal model weight {key}; not the authors' temporal transformer")
        out[f"temporal.blocks.{layer}.{part}.{leaf}"] = value
    return out


def official_config(
    state: dict[str, torch.Tensor], backbone: str | None, position: str, temporal_heads: int
) -> ModelConfig:
    """The ModelConfig that reproduces the checkpoint's architecture."""
    dims = clip_dims(clip_state(state))
    name, size = (backbone, dims["image_size"]) if backbone else match_backbone(dims)
    ctx = state["prompt_learner.ctx"]
    qkv = state.get("temporal_net.temporal_transformer.layers.0.0.fn.fn.to_qkv.weight")
    fc1 = state.get("temporal_net.temporal_transformer.layers.0.1.fn.fn.net.0.weight")
    if qkv is None or fc1 is None:
        raise CheckpointError("the checkpoint lacks the temporal transformer's layer 0; not a DFER-CLIP checkpoint")
    inner = qkv.shape[0] // 3
    if inner % temporal_heads:
        raise CheckpointError(f"temporal attention width {inner} is not divisible by {temporal_heads} heads; pass --temporal-heads")
    depth = len({k.split(".")[3] for k in state if k.startswith("temporal_net.temporal_transformer.layers.")})
    return ModelConfig(
        backbone=name, pretrained=None, quick_gelu=True, n_ctx=int(ctx.shape[-2]), class_specific=ctx.dim() == 3,
        position=position, temporal_depth=depth, temporal_heads=temporal_heads, temporal_head_dim=inner // temporal_heads,
        temporal_mlp_dim=int(fc1.shape[0]), temperature=0.01, normalize="none", mode="dfer",
        num_frames=int(state["temporal_net.pos_embedding"].shape[1]) - 1, image_size=size,
    )


def default_classes(n: int) -> tuple[str, ...]:
    if n == len(CLASSES_7):
        return CLASSES_7
    if n == len(CLASSES_11):
        return CLASSES_11
    return tuple(f"class_{i}" for i in range(n))


def convert_official(
    src: str | Path,
    classes: Sequence[str] | None = None,
    backbone: str | None = None,
    position: str = "end",
    temporal_heads: int = 8,
):
    """Read an authors' checkpoint and return (native model in eval mode, raw checkpoint object)."""
    src = Path(src)
    obj = read_official(src)
    state = official_state(obj, src)
    cfg = official_config(state, backbone, position, temporal_heads)
    texts, _ = recover_texts(state)
    names = tuple(classes) if classes is not None else default_classes(len(texts))
    if len(names) != len(texts):
        raise CheckpointError(f"the checkpoint has {len(texts)} classes but {len(names)} class names were given")
    class_texts = ClassTexts(names, tuple(texts), f"official:{src.name}")
    try:
        model = build_model(cfg, class_texts, load_weights=False)
    except TrainerError as exc:
        raise CheckpointError(f"cannot rebuild the checkpoint's model: {exc}") from exc
    mapped = {("image_encoder." + k[7:] if k.startswith("visual.") else f"text_encoder.{k}"): v
              for k, v in clip_state(state).items() if k != "token_embedding.weight"}
    mapped["logit_scale"] = mapped.pop("text_encoder.logit_scale").reshape(model.logit_scale.shape)
    mapped.update(temporal_state(state))
    own = model.state_dict()
    mapped["prompt_learner.ctx"] = state["prompt_learner.ctx"]
    mapped["prompt_learner.embeddings"] = torch.cat(
        [state["prompt_learner.token_prefix"], state["prompt_learner.token_suffix"]], dim=1
    )  # (n_cls, 77 - M, D)
    for key in ("prompt_learner.token_ids", "prompt_learner.order", "prompt_learner.eos_index"):
        mapped[key] = own[key]
    load_state(model, mapped, f"{src.name}")
    return model.eval(), obj


def import_official(
    src: str | Path,
    out: str | Path,
    classes: Sequence[str] | None = None,
    backbone: str | None = None,
    position: str = "end",
    temporal_heads: int = 8,
) -> ImportReport:
    """Convert an authors' .pth into a native checkpoint at `out` (written atomically)."""
    model, obj = convert_official(src, classes, backbone, position, temporal_heads)
    best = obj.get("best_acc")
    best = float(best) if isinstance(best, (torch.Tensor, float, int)) and torch.as_tensor(best).numel() == 1 else None
    epoch = obj.get("epoch") if isinstance(obj.get("epoch"), int) else None
    extra = {"imported_from": {"file": Path(src).name, "epoch": epoch, "best_acc": best}}
    written = save_model(model, out, extra)
    cfg = model.config
    return ImportReport(
        Path(src), written, cfg.backbone, model.texts.classes, model.texts.texts, cfg.n_ctx, cfg.class_specific,
        cfg.temporal_depth, cfg.num_frames, extra["imported_from"]["epoch"], best,
    )
