"""Create the open_clip CLIP backbone and load its pretrained weights from local files, offline.

`pretrained` may be None (random weights, for tests and benchmarks), a file, a directory, or an
open_clip pretrained tag such as `openai`, looked up in the Hugging Face cache without network.

The sha256 of the weights file a backbone was loaded from is obtained here and nowhere else
(`Backbone.sha256`): a PEFT model's checkpoint records it as the base its delta applies to, and
loading that checkpoint compares it (`trainer.model.checkpoint`). A tiny face-CLIP folder's card
hash (checked against the file when it is resolved) is reused; any other file is hashed once,
streaming, and only for PEFT models, the ones whose checkpoints need it.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer.errors import BackboneError
from trainer.model.config import ModelConfig
from trainer.model.families import family
from trainer.model.tinyface import file_sha256

log = logging.getLogger(__name__)

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
WEIGHT_FILENAMES = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "model.safetensors",
    "pytorch_model.bin",
    "model.pth",
)
_EXTRA_OPENAI_KEYS = ("input_resolution", "context_length", "vocab_size")


@dataclass(frozen=True)
class Backbone:
    """An open_clip CLIP model with the facts the rest of the model needs."""

    clip: nn.Module
    image_size: int
    embed_dim: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights: str | None  # where the weights came from; None for random
    sha256: str | None = None  # "sha256:<hex>" of that file, for PEFT models (see the module docstring)
    tensors: frozenset[tuple[int, tuple[int, ...], tuple[int, ...]]] = frozenset()  # the CLIP's own, as created

    def own_keys(self, state: dict[str, torch.Tensor]) -> frozenset[str]:
        """The keys of `state` (a model's state dict) whose tensors are this backbone's own: those it
        was created (and loaded) with, not the ones added after it (PEFT weights, prompts, ...)."""
        return frozenset(key for key, value in state.items() if _identity(value) in self.tensors)


def _identity(tensor: torch.Tensor) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """Storage address, shape and strides: the same for every view of one tensor, distinct between live tensors."""
    return tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride())


def create_backbone(cfg: ModelConfig, load_weights: bool = True) -> Backbone:
    """Build the CLIP named by `cfg.backbone`; load `cfg.pretrained` unless `load_weights` is False."""
    from open_clip.model import CLIP

    fam = family(cfg.backbone)
    model_cfg = fam.model_cfg(cfg.backbone, cfg.image_size)
    quick_gelu = bool(model_cfg.pop("quick_gelu", False)) or cfg.quick_gelu
    for key in ("custom_text", "multimodal_cfg"):
        model_cfg.pop(key, None)
    path, tag_cfg, known_sha = None, {}, None
    if load_weights and cfg.pretrained is not None:
        path, tag_cfg, known_sha = resolve_pretrained(cfg.backbone, cfg.pretrained)  # fail before building a big model
        if tag_cfg and bool(tag_cfg.get("quick_gelu", False)) != quick_gelu:
            raise BackboneError(
                f"{cfg.backbone} weights {cfg.pretrained!r} were trained with "
                f"{'QuickGELU' if tag_cfg.get('quick_gelu') else 'GELU'}; set quick_gelu to "
                f"{bool(tag_cfg.get('quick_gelu', False))} in the model config"
            )
    clip = CLIP(**model_cfg, quick_gelu=quick_gelu)
    mean, std = OPENAI_MEAN, OPENAI_STD
    source, sha = None, None
    if path is not None:
        load_backbone_weights(clip, path)
        source = str(path)
        if cfg.peft != "none":  # its checkpoints record the base they are a delta of
            sha = known_sha or file_sha256(path)
        if tag_cfg:
            mean = tuple(tag_cfg.get("mean", mean))
            std = tuple(tag_cfg.get("std", std))
    elif load_weights and not fam.random_start:
        log.warning("no pretrained weights given for %s: the backbone starts from random weights "
                    "(--pretrained FILE_OR_TAG loads some)", cfg.backbone)
    if cfg.grad_checkpointing:
        clip.set_grad_checkpointing(True)
    size = clip.visual.image_size
    size = int(size[0]) if isinstance(size, (tuple, list)) else int(size)
    embed_dim = int(clip.text_projection.shape[1]) if clip.text_projection is not None else int(model_cfg["embed_dim"])
    tensors = frozenset(_identity(t) for t in clip.state_dict().values())
    return Backbone(clip, size, embed_dim, tuple(mean), tuple(std), source, sha, tensors)


def resolve_pretrained(backbone: str, pretrained: str) -> tuple[Path, dict[str, Any], str | None]:
    """Map a file, a directory or a pretrained tag to a local weights file (never downloads):
    (file, open_clip tag config or {}, the file's sha256 where already checked, else None)."""
    path = Path(os.path.expanduser(pretrained))
    own = family(backbone).own_weights
    found = own(pretrained, path) if own is not None else None  # e.g. tinyface: checked against its card
    if found is not None:
        return found[0], {}, found[1]
    if path.is_file():
        return path, {}, None
    if path.is_dir():
        for name in WEIGHT_FILENAMES:
            if (path / name).is_file():
                return path / name, {}, None
        found = sorted(p.name for p in path.iterdir() if p.suffix in (".pt", ".pth", ".bin", ".safetensors"))
        if len(found) == 1:
            return path / found[0], {}, None
        raise BackboneError(
            f"no weights file in {path}: put one of {', '.join(WEIGHT_FILENAMES[:3])} there"
            + (f" (found several: {found})" if found else "")
        )
    if os.sep in pretrained or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors")):
        raise BackboneError(f"pretrained weights file {pretrained} does not exist; check the path")
    return (*_from_tag(backbone, pretrained), None)


def _from_tag(backbone: str, tag: str) -> tuple[Path, dict[str, Any]]:
    from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model

    own_tags = family(backbone).tags
    tag_cfg = get_pretrained_cfg(backbone, tag) if own_tags is None else {}
    if not tag_cfg:
        tags = list_pretrained_tags_by_model(backbone) if own_tags is None else list(own_tags)
        raise BackboneError(
            f"pretrained {tag!r} is neither a file, a directory nor a known tag of {backbone}"
            + (f" (tags: {', '.join(tags)})" if tags else "")
        )
    candidates = _cached_candidates(tag_cfg)
    for candidate in candidates:
        if candidate.is_file():
            return candidate, tag_cfg
    repo = (tag_cfg.get("hf_hub") or "").strip("/")
    url = tag_cfg.get("url") or ""
    where = f"the Hugging Face cache (repo {repo}, file open_clip_model.safetensors)" if repo else ""
    if url:
        where += (" or " if where else "") + f"~/.cache/clip/{url.rsplit('/', 1)[-1]}"
    raise BackboneError(
        f"weights for {backbone} ({tag}) are not on this machine (offline); put them in {where}, "
        "or pass a local file or folder as pretrained"
    )


def _cached_candidates(tag_cfg: dict[str, Any]) -> list[Path]:
    out: list[Path] = []
    repo = (tag_cfg.get("hf_hub") or "").strip("/")
    if repo:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - huggingface_hub ships with open_clip's deps
            try_to_load_from_cache = None
        if try_to_load_from_cache is not None:
            for name in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
                hit = try_to_load_from_cache(repo, name)
                if isinstance(hit, str):
                    out.append(Path(hit))
    url = tag_cfg.get("url") or ""
    if url:
        name = url.rsplit("/", 1)[-1]
        out += [Path.home() / ".cache" / "clip" / name, Path.home() / ".cache" / "open_clip" / name]
    return out


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors, a torch.save file, or an OpenAI TorchScript archive."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(path), device="cpu")
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # "looks like a TorchScript archive"
                    obj = torch.load(path, map_location="cpu", weights_only=True)
            except (RuntimeError, ValueError) as exc:
                if "TorchScript" not in str(exc) and "torchscript" not in str(exc):
                    raise
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    obj = dict(torch.jit.load(str(path), map_location="cpu").state_dict())  # OpenAI's .pt archives
    except Exception as exc:  # noqa: BLE001 - any reader failure becomes one line
        raise BackboneError(f"cannot read weights from {path}: {exc}".splitlines()[0]) from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise BackboneError(f"{path} holds no state dict of CLIP weights")
    out = {}
    for key, value in obj.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if key not in _EXTRA_OPENAI_KEYS and isinstance(value, torch.Tensor):
            out[key] = value
    return out


def load_backbone_weights(clip: nn.Module, path: Path) -> None:
    """Load CLIP weights into `clip`, failing with one line on missing keys or wrong shapes."""
    from open_clip.model import resize_pos_embed

    state = read_weights(path)
    resize_pos_embed(state, clip)
    own = clip.state_dict()
    if "logit_scale" in state and state["logit_scale"].numel() == 1:
        state["logit_scale"] = state["logit_scale"].reshape(own["logit_scale"].shape)
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            raise BackboneError(
                f"weights in {path} do not fit the backbone: {key} has shape {tuple(value.shape)}, "
                f"the model expects {tuple(own[key].shape)}; pick the backbone these weights belong to"
            )
    missing = sorted(set(own) - set(state))
    if missing:
        raise BackboneError(
            f"weights in {path} lack {len(missing)} keys of the backbone (first: {missing[0]}); "
            "they are not CLIP weights for this backbone"
        )
    clip.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)
