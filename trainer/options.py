"""The one mapping from command-line options to a RunConfig, used by `trainer run` and `promptkit
compare` (library code: no Typer here, the commands pass their option values through).

The layers stay those of `trainer.config.resolve_config`: preset -> `--config FILE` -> options ->
`--set`. Decisions the options imply are applied to the layered config directly, between the
options and `--set`: hand-made lists with a dataset preset keep the preset's settings and class set
but not its split files; `--classes` without `--descriptions` takes that class set's own first
descriptor set (`v1`); a lone `--test-list` (evaluation only) stands in for the train list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from trainer.config import RunConfig, apply_set, config_from_dict, layered_config
from trainer.errors import ConfigError
from trainer.model.backbone import weights_fit


def text_options(text: str | None, descriptions: str | None, store: str | None) -> dict[str, Any]:
    """The `text` section from `--text descriptions|classnames|random_words|template:NAME`, `--descriptions`, `--store`."""
    out: dict[str, Any] = {"descriptions": descriptions, "store": store}
    if descriptions is not None and text != "random_words":
        out["source"] = "descriptions"
    if text is None:
        return out
    if text in ("descriptions", "classnames", "random_words"):
        out["source"] = text
    elif text.startswith("template:") and len(text) > len("template:"):
        out.update(source="template", template=text[len("template:"):])
    else:
        raise ConfigError(f"--text takes descriptions, classnames, random_words or template:NAME_OR_PATH; got {text!r}")
    return out


def cli_options(*, seed: int | None = None, select: str | None = None, val_fraction: float | None = None,
                precision: str | None = None, device: str | None = None, deterministic: bool | None = None,
                ckpt_every_steps: int | None = None, backbone: str | None = None, pretrained: str | None = None,
                dataset: str | None = None, data_root: str | None = None, fold: int | None = None,
                train_list: str | None = None, test_list: str | None = None, classes: str | None = None,
                frames: int | None = None, workers: int | None = None, epochs: int | None = None,
                batch: int | None = None, accum: int | None = None, lr_image: float | None = None,
                lr_temporal: float | None = None, lr_prompt: float | None = None, clip_grad: float | None = None,
                text: str | None = None, descriptions: str | None = None, store: str | None = None,
                allow_overlap: bool | None = None, label_smoothing: float | None = None,
                balanced_sampling: bool | None = None, ema: float | None = None, test_views: str | None = None,
                logger: str | None = None, peft: str | None = None, layer_decay: float | None = None,
                mixup: float | None = None, negatives: bool | None = None, negative_weight: float | None = None,
                multi_descriptions: bool | None = None) -> dict[str, Any]:
    """The nested options layer from the commands' flat option values (None: not given)."""
    return {
        "seed": seed, "select": select, "val_fraction": val_fraction, "precision": precision, "device": device,
        "deterministic": deterministic, "ckpt_every_steps": ckpt_every_steps, "logger": logger,
        "model": {"backbone": backbone, "pretrained": pretrained, "peft": peft, "negatives": negatives,
                  "negative_weight": negative_weight, "multi_descriptions": multi_descriptions},
        "data": {"dataset": dataset, "data_root": data_root, "fold": fold, "train_list": train_list,
                 "test_list": test_list, "classes": classes, "num_segments": frames, "workers": workers,
                 "allow_overlap": allow_overlap, "balanced_sampling": balanced_sampling, "test_views": test_views},
        "optim": {"epochs": epochs, "batch": batch, "accum_steps": accum, "lr_image": lr_image,
                  "lr_temporal": lr_temporal, "lr_prompt": lr_prompt, "clip_grad": clip_grad,
                  "label_smoothing": label_smoothing, "ema": ema, "layer_decay": layer_decay, "mixup": mixup},
        "text": text_options(text, descriptions, store),
    }


def given(options: dict[str, Any]) -> bool:
    """Whether any option in the nested options layer was given."""
    return any(given(v) if isinstance(v, dict) else v is not None for v in options.values())


def preset_name(preset_option: str | None, options: dict[str, Any]) -> str:
    """`--preset`, else the `--dataset`'s preset, else `default`."""
    return preset_option or (options.get("data") or {}).get("dataset") or "default"


def config_from_options(preset_option: str | None, config_file: str | Path | None, options: dict[str, Any],
                        sets: Sequence[str] = (), *, evaluate_only: bool = False) -> RunConfig:
    """The RunConfig of these command-line options (see the module docstring for the layers).

    `evaluate_only`: nothing trains (`promptkit compare` without --train), so a lone --test-list is
    enough; the train list is then the test list and never read.
    """
    name = preset_name(preset_option, options)
    data = {k: v for k, v in (options.get("data") or {}).items() if v is not None}
    if evaluate_only and data.get("test_list") and not data.get("train_list") and not data.get("dataset"):
        data["train_list"] = data["test_list"]
    raw = layered_config(name, config_file, {**options, "data": data})
    model = options.get("model") or {}
    if model.get("backbone") is not None and model.get("pretrained") is None \
            and not weights_fit(model["backbone"], raw["model"].get("pretrained")):
        # --backbone without --pretrained: the preset's weights belong to its own backbone
        raw["model"] = {**raw["model"], "pretrained": None}
    if data.get("train_list") is not None and data.get("dataset") is None and name != "default":
        # hand-made lists with a dataset preset: the preset's settings and class set, not its split files
        raw["data"] = {**raw["data"], "dataset": None, **({} if data.get("classes") else {"classes": name})}
    if data.get("classes") is not None and (options.get("text") or {}).get("descriptions") is None:
        # --classes without --descriptions: that class set's own first descriptor set, not the
        # preset's (whose texts are written for the preset's classes)
        raw["text"] = {**raw.get("text", {}), "descriptions": "v1"}
    for assignment in sets:
        raw = apply_set(raw, assignment)
    config = config_from_dict(raw)
    if (options.get("model") or {}).get("negative_weight") is not None and not config.model.negatives:
        raise ConfigError("--negative-weight weighs the negative descriptions of --negatives; give --negatives too")
    return config

