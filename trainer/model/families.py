"""The backbone families, named once: how each is built, where its weights come from, the image
sizes it takes and the vocabulary its tokenizer's rows were trained on.

`family(name)` is the table's entry for a backbone name: `tiny` (a small random CLIP for tests),
`tinyface` (the shipped face-CLIP) or, for every other name, open_clip's model config of that name.
`trainer.model.backbone` builds and loads from it; the model config checks image sizes against it;
`interpret` picks its vocabulary from it. Adding a family is one entry here. Plain data and
functions: open_clip is imported only when an open_clip config is read.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from trainer.errors import BackboneError
from trainer.model.tinyface import SHIPPED_TAG, TINYFACE, read_card, shipped_dir, tinyface_cfg, verified_weights

TINY = "tiny"
CLIP_VOCAB = 49408  # CLIP's BPE vocabulary: every family uses its tokenizer (promptkit.tokens)


@dataclass(frozen=True)
class Family:
    """One backbone family.

    model_cfg: (backbone name, image size or None for the family's own) -> open_clip CLIP kwargs.
    image_sizes: the sizes it can be built at (None: any). tags: the `pretrained` tags it resolves
    itself (None: open_clip's tags of the model). own_weights: a local weights folder or tag it
    resolves and verifies itself -> (file, its sha256), else None (a plain file or folder).
    random_start: starting from random weights is expected (no warning). vocabulary: the token rows
    its text side was trained on, `clip` (all of CLIP's BPE) or `world` (the face world's captions).
    """

    name: str
    model_cfg: Callable[[str, int | None], dict[str, Any]]
    image_sizes: tuple[int, ...] | None = None
    tags: tuple[str, ...] | None = None
    own_weights: Callable[[str, Path], tuple[Path, str] | None] | None = None
    random_start: bool = False
    vocabulary: str = "clip"

    @property
    def has_weights(self) -> bool:
        """Whether any pretrained weights exist for it (`tiny` has none: it is always random)."""
        return self.tags != ()


def tiny_model_cfg(image_size: int = 32) -> dict[str, Any]:
    """A small CLIP for tests: ViT 2x64 (patch 8), text 2x64 with CLIP's 49408-token vocabulary."""
    return {
        "embed_dim": 64,
        "vision_cfg": {"image_size": image_size, "patch_size": 8, "width": 64, "layers": 2, "head_width": 32},
        "text_cfg": {"context_length": 77, "vocab_size": CLIP_VOCAB, "width": 64, "heads": 2, "layers": 2},
    }


def _tinyface_weights(pretrained: str, path: Path) -> tuple[Path, str] | None:
    """The shipped weights (`world`) or a `trainer pretrain` folder, checked against its card."""
    if pretrained != SHIPPED_TAG and not path.is_dir():
        return None
    folder = shipped_dir() if pretrained == SHIPPED_TAG else path
    return verified_weights(folder), read_card(folder)["weights_sha256"]


def open_clip_cfg(name: str, image_size: int | None = None) -> dict[str, Any]:
    """open_clip's config of `name` (a CLIP-style text transformer and ViT or ModifiedResNet)."""
    from open_clip.factory import get_model_config

    check_backbone_name(name)
    model_cfg = get_model_config(name)
    if model_cfg is None:
        raise BackboneError(f"open_clip has no config for the backbone {name!r}")
    text_cfg = model_cfg.get("text_cfg", {})
    if model_cfg.get("custom_text") or "hf_model_name" in text_cfg or "timm_model_name" in model_cfg.get("vision_cfg", {}):
        raise BackboneError(
            f"backbone {name!r} has a custom text or timm image tower; DFER-CLIP needs a CLIP-style "
            "text transformer and ViT (e.g. ViT-B-32, ViT-B-16, ViT-L-14)"
        )
    if text_cfg.get("vocab_size", CLIP_VOCAB) != CLIP_VOCAB or text_cfg.get("hf_tokenizer_name"):
        raise BackboneError(f"backbone {name!r} does not use CLIP's BPE vocabulary; pick a CLIP-tokenizer model")
    if image_size is not None:
        model_cfg["vision_cfg"]["image_size"] = image_size
    return model_cfg


FAMILIES: dict[str, Family] = {
    TINY: Family(TINY, lambda _name, size: tiny_model_cfg(size or 32), image_sizes=(32, 64), tags=(),
                 random_start=True),
    TINYFACE: Family(TINYFACE, lambda _name, size: tinyface_cfg(size), tags=(SHIPPED_TAG,),
                     own_weights=_tinyface_weights, random_start=True, vocabulary="world"),
}
OPEN_CLIP = Family("open_clip", open_clip_cfg)  # every other name: open_clip's model of that name


def family(backbone: str) -> Family:
    """The family a backbone name belongs to."""
    return FAMILIES.get(backbone, OPEN_CLIP)


def weights_fit(backbone: str, pretrained: str | None) -> bool:
    """Whether `pretrained`, set for another backbone (a preset's), also names weights of `backbone`:
    a pretrained tag that `backbone` knows. A file or folder belongs to the backbone it was set for."""
    if pretrained is None:
        return True
    own_tags = family(backbone).tags  # tiny: none; tinyface: world
    if own_tags is not None:
        return pretrained in own_tags
    from open_clip.pretrained import list_pretrained_tags_by_model

    return pretrained in list_pretrained_tags_by_model(backbone)


def known_backbones() -> list[str]:
    import open_clip

    return [*FAMILIES, *open_clip.list_models()]


def check_backbone_name(name: str) -> None:
    """BackboneError naming close known names when `name` is neither a family of its own nor an open_clip model."""
    known = known_backbones()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=4, cutoff=0.5)
        hint = f"; close names: {', '.join(close)}" if close else "; see open_clip.list_models()"
        raise BackboneError(f"unknown model: open_clip does not know the backbone {name!r}{hint}")
