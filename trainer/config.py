"""Run configuration: typed dataclasses, the paper's presets, and overrides.

A `RunConfig` is everything that decides what a training run computes: the model (a typed
`trainer.model.ModelConfig`, validated when the config is resolved, before anything is written; in
JSON a mapping of its fields), the data, the optimiser, the text side and the run-level switches
(seed, precision, model selection). Options that do not change the result (output folder, quiet
mode, resume) are not part of it. `trainer.options` maps command-line options onto these layers.

Resolution order, later wins: preset -> `--config FILE.json` -> explicit CLI options ->
`--set key=value` (dotted, e.g. `optim.lr_image=1e-4`, `model.n_ctx=4`, `optim.milestones=[30,40]`).

Presets `dfew`, `ferv39k`, `mafw` carry the authors' settings (SGD momentum 0.9, weight decay 1e-4,
batch 48, 50 epochs, MultiStepLR at 30/40 gamma 0.1, lr image 1e-5 / temporal 1e-2 / prompt 1e-3,
fp32, ViT-B-32 with QuickGELU). Preset `default` is the embedded synthetic run (the shipped tiny
face-CLIP fine-tuned on the synthetic face world; a few minutes on two CPU cores).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainer.config_layers import drop_none, load_config_file, merge, set_value
from trainer.data.registry import AUGMENT_PRESETS, DATASETS, SYNTH
from trainer.declare import COMPARE, RUN, switch
from trainer.errors import ConfigError
from trainer.model.config import ModelConfig
from trainer.world.clips import STYLES

PRECISIONS = ("fp32", "bf16", "fp16")
OPTIMIZERS = ("sgd", "adamw")
SELECTIONS = ("last", "val", "best-test-war")
TEXT_SOURCES = ("descriptions", "classnames", "template", "random_words")
DEVICES = ("auto", "cpu", "cuda")
LOGGERS = ("none", "tensorboard", "wandb", "mlflow")
DECODES = ("cpu", "gpu", "auto")
PRESETS = ("default", *(spec.preset for spec in DATASETS.values()))  # default: the embedded synthetic run
BOTH = (RUN, COMPARE)
TEST_VIEWS_HELP = "CLIPSxCROPS test views, logits averaged (e.g. 2x3; default 1x1)."


def text_source(text: str) -> dict[str, Any]:
    """`--text descriptions|classnames|random_words|template:NAME` -> text.source (and text.template)."""
    if text in ("descriptions", "classnames", "random_words"):
        return {"source": text}
    if text.startswith("template:") and len(text) > len("template:"):
        return {"source": "template", "template": text[len("template:"):]}
    raise ConfigError(f"--text takes descriptions, classnames, random_words or template:NAME_OR_PATH; got {text!r}")


def one_fold(spec: str) -> dict[str, Any]:
    """`--fold N` -> data.fold (`trainer run` reads a list or `all` itself: `trainer.protocol.parse_folds`)."""
    if not str(spec).strip().isdigit():
        raise ConfigError(f"--fold takes one fold number here (e.g. --fold 2); got {spec!r}")
    return {"fold": int(spec)}


@dataclass
class DataConfig:
    """Where clips come from and how they are sampled.

    With no `dataset` and no `train_list`, the run trains on the synthetic set (generated once and
    cached under `synth_dir`, or under the user's cache folder).
    """

    dataset: str | None = field(default=None, metadata=switch(
        "--dataset", help=f"{' | '.join(DATASETS)}: find the standard split files under --data-root.", commands=BOTH))
    data_root: str | None = field(default=None, metadata=switch(
        "--data-root", help="Dataset folder; also remaps the absolute paths inside list files.", commands=BOTH))
    fold: int = field(default=1, metadata=switch(  # `trainer run` reads it as the protocol's fold list
        "--fold", help="1..5, a comma list, or all.", commands=BOTH, cli_type=str, to_fields=one_fold))
    train_list: str | None = field(default=None, metadata=switch(
        "--train-list", help="List file '<clip> <frames> <label>' or CSV (path,label).", commands=BOTH))
    test_list: str | None = field(default=None, metadata=switch(
        "--test-list", help="Test list, same formats.", commands=BOTH))
    classes: str | None = field(default=None, metadata=switch(
        "--classes", help="Class set for hand-made lists: dfew | mafw | 'a,b,c' | a file.", commands=BOTH))
    allow_overlap: bool = field(default=False, metadata=switch(  # clips in both lists: refused unless True
        "--allow-overlap", help="Train even when clips are in both the train and the test list."))
    num_segments: int = field(default=16, metadata=switch(
        "--frames", help="Segments (frames) per clip.", commands=BOTH))
    augment: str = "none"
    workers: int = field(default=2, metadata=switch(
        "--workers", help="Data loader worker processes.", commands=BOTH))
    synth_dir: str | None = None
    synth_seed: int = SYNTH.seed  # the synthetic set's settings (defaults: trainer.data.registry.SYNTH)
    synth_train_per_class: int = SYNTH.train_per_class
    synth_test_per_class: int = SYNTH.test_per_class
    synth_size: int = SYNTH.size
    synth_style: str = SYNTH.style  # cartoon | chalk | sketch (chalk, sketch: held-out styles)
    balanced_sampling: bool = field(default=False, metadata=switch(  # p(clip) = 1 / (clips of its class)
        "--balanced-sampling", help="Draw train clips class-balanced (seeded per epoch).", summary=True))
    test_views: str = field(default="1x1", metadata=switch("--test-views", help=TEST_VIEWS_HELP, summary=True))
    decode: str = field(default="cpu", metadata=switch(  # trainer.accel, trainer.data.batched
        "--decode", help="cpu | gpu | auto: where train JPEG frames are decoded and augmented "
        "(gpu: batched on the GPU with nvJPEG; auto: gpu on CUDA)."))

    def __post_init__(self) -> None:
        parse_views(self.test_views)
        if self.dataset is not None and self.dataset not in DATASETS:
            raise ConfigError(f"data.dataset must be one of {', '.join(DATASETS)}; got {self.dataset!r}")
        if self.dataset is not None:
            n_folds = DATASETS[self.dataset].folds
            if not 1 <= self.fold <= n_folds:
                raise ConfigError(f"data.fold for {self.dataset} must be in 1..{n_folds}; got {self.fold!r}")
            if self.data_root is None:
                raise ConfigError(f"--dataset {self.dataset} needs --data-root DIR (the folder holding the dataset)")
        if (self.train_list is None) != (self.test_list is None) and self.dataset is None:
            raise ConfigError("give both --train-list and --test-list (or neither, to use the synthetic set)")
        if self.num_segments < 1:
            raise ConfigError(f"data.num_segments must be >= 1; got {self.num_segments!r}")
        if self.augment not in AUGMENT_PRESETS:
            raise ConfigError(f"data.augment must be one of {', '.join(AUGMENT_PRESETS)}; got {self.augment!r}")
        if self.workers < 0:
            raise ConfigError(f"data.workers must be >= 0; got {self.workers!r}")
        if self.decode not in DECODES:
            raise ConfigError(f"data.decode (--decode) must be one of {', '.join(DECODES)}; got {self.decode!r}")
        if not 32 <= self.synth_size <= 512:
            raise ConfigError(f"data.synth_size must be in 32..512 pixels; got {self.synth_size!r}")
        if self.synth_style not in STYLES:
            raise ConfigError(f"data.synth_style must be one of {', '.join(STYLES)}; got {self.synth_style!r}")
        for name in ("synth_train_per_class", "synth_test_per_class"):
            if getattr(self, name) < 1:
                raise ConfigError(f"data.{name} must be >= 1; got {getattr(self, name)!r}")

    @property
    def synthetic(self) -> bool:
        return self.dataset is None and self.train_list is None

    @property
    def views(self) -> tuple[int, int]:
        """(temporal clips, spatial crops) of `test_views`."""
        return parse_views(self.test_views)


MAX_VIEW_CLIPS, MAX_VIEW_CROPS = 16, 10  # beyond these the views repeat each other (and cost grows as the product)


def parse_views(spec: object) -> tuple[int, int]:
    """`"2x3"` -> (2, 3): temporal clips (1..16) x spatial crops (1..10)."""
    clips, sep, crops = str(spec).strip().lower().partition("x")
    if sep and clips.isdigit() and crops.isdigit() and int(clips) >= 1 and int(crops) >= 1:
        if int(clips) > MAX_VIEW_CLIPS or int(crops) > MAX_VIEW_CROPS:
            raise ConfigError(f"--test-views takes at most {MAX_VIEW_CLIPS} clips x {MAX_VIEW_CROPS} crops (each test "
                              f"clip is scored clips x crops times; e.g. 2x3); got {spec!r}")
        return int(clips), int(crops)
    raise ConfigError(f"--test-views takes CLIPSxCROPS with both >= 1 (e.g. 2x3); got {spec!r}")


@dataclass
class OptimConfig:
    """SGD (the paper's; `adamw` as an option) with one learning rate per model part, MultiStepLR,
    accumulation and clipping. `momentum` applies to SGD only.

    `batch` is the global batch per optimiser step: it is split over `accum_steps` micro-batches
    and over the ranks of a distributed run.
    """

    optimizer: str = "sgd"
    epochs: int = field(default=50, metadata=switch("--epochs", help="Epochs.", commands=BOTH))
    batch: int = field(default=48, metadata=switch(
        "--batch", help="Global batch per optimiser step (split over ranks and accumulation).", commands=BOTH))
    accum_steps: int = field(default=1, metadata=switch(
        "--accum", help="Gradient accumulation steps per optimiser step."))
    lr_image: float = field(default=1e-5, metadata=switch("--lr-image", help="Learning rate of the image encoder."))
    lr_temporal: float = field(default=1e-2, metadata=switch(
        "--lr-temporal", help="Learning rate of the temporal model."))
    lr_prompt: float = field(default=1e-3, metadata=switch(
        "--lr-prompt", help="Learning rate of the prompt contexts."))
    lr_head: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    milestones: tuple[int, ...] = (30, 40)
    gamma: float = 0.1
    clip_grad: float | None = field(default=None, metadata=switch(
        "--clip-grad", help="Clip the gradient norm to this value."))
    drop_last: bool = True
    label_smoothing: float = field(default=0.0, metadata=switch(
        "--label-smoothing", help="Label smoothing of the cross-entropy, 0 <= X < 1 (off: 0).", summary=True))
    ema: float | None = field(default=None, metadata=switch(  # decay of an EMA of the trainable weights
        "--ema", help="Evaluate an EMA of the trainable weights with this decay, in (0, 1).", summary=True))
    layer_decay: float | None = field(default=None, metadata=switch(  # image lr x decay ** (depth below the top)
        "--layer-decay", summary=True,
        help="Layer-wise lr decay of the image encoder, in (0, 1] (e.g. 0.75 with --set optim.optimizer=adamw)."))
    mixup: float = field(default=0.0, metadata=switch(
        "--mixup", help="Mixup of train clips with Beta(alpha, alpha), alpha > 0 (off: 0).", summary=True))

    def __post_init__(self) -> None:
        self.milestones = tuple(int(m) for m in self.milestones)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optim.optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}")
        if self.epochs < 1:
            raise ConfigError(f"optim.epochs must be >= 1; got {self.epochs!r}")
        if self.batch < 1:
            raise ConfigError(f"optim.batch must be >= 1; got {self.batch!r}")
        if self.accum_steps < 1 or self.batch % self.accum_steps:
            raise ConfigError(
                f"optim.accum_steps must be >= 1 and divide the batch {self.batch}; got {self.accum_steps!r}"
            )
        for name in ("lr_image", "lr_temporal", "lr_prompt", "lr_head", "momentum", "weight_decay"):
            if getattr(self, name) < 0:
                raise ConfigError(f"optim.{name} must be >= 0; got {getattr(self, name)!r}")
        if list(self.milestones) != sorted(self.milestones) or any(m < 1 for m in self.milestones):
            raise ConfigError(f"optim.milestones must be increasing positive epochs; got {list(self.milestones)!r}")
        if not 0 < self.gamma <= 1:
            raise ConfigError(f"optim.gamma must be in (0, 1]; got {self.gamma!r}")
        if self.clip_grad is not None and self.clip_grad <= 0:
            raise ConfigError(f"optim.clip_grad must be > 0 (or null for no clipping); got {self.clip_grad!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"optim.label_smoothing must be in [0, 1); got {self.label_smoothing!r}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ConfigError(f"optim.ema (--ema DECAY) must be in (0, 1), e.g. 0.999; got {self.ema!r}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ConfigError(f"optim.layer_decay must be in (0, 1], e.g. 0.75; got {self.layer_decay!r}")
        if self.mixup < 0:
            raise ConfigError(f"optim.mixup (the Beta alpha) must be >= 0 (0: off); got {self.mixup!r}")

    def lrs(self) -> dict[str, float]:
        """Learning rate per model part, keyed like `DFERCLIP.param_groups`."""
        return {"image": self.lr_image, "temporal": self.lr_temporal, "prompt": self.lr_prompt, "head": self.lr_head}


@dataclass
class TextConfig:
    """The class texts: a descriptor set (`descriptions`), the class names, a manual template, or
    `random_words` (the descriptor set's descriptions replaced by seeded random words of the same
    token length: WaffleCLIP's control, `promptkit.random_words`)."""

    source: str = field(default="descriptions", metadata=switch(
        "--text", help="descriptions | classnames | random_words (WaffleCLIP control) | template:NAME "
        "(e.g. template:photo_of).", to_fields=text_source))
    descriptions: str = field(default="v1", metadata=switch(
        "--descriptions", help="Descriptor set: v2 | mafw/v2 | path.json.", commands=BOTH))
    template: str | None = None
    store: str | None = field(default=None, metadata=switch(
        "--store", commands=BOTH, help="Your descriptor store (default $PROMPTKIT_STORE, else $XDG_DATA_HOME/promptkit "
        "or ~/.local/share/promptkit); shipped sets are read too."))

    def __post_init__(self) -> None:
        if self.source not in TEXT_SOURCES:
            raise ConfigError(f"text.source must be one of {', '.join(TEXT_SOURCES)}; got {self.source!r}")
        if self.source == "template" and not self.template:
            raise ConfigError("text.source 'template' needs text.template (e.g. --text template:photo_of)")


@dataclass
class RunConfig:
    """Everything that decides what a run computes; saved as config.json and inside checkpoints."""

    preset: str = "default"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    text: TextConfig = field(default_factory=TextConfig)
    seed: int = field(default=1, metadata=switch("--seed", help="Seed of a single run.", commands=BOTH))
    deterministic: bool = field(default=False, metadata=switch(
        "--deterministic/--no-deterministic", help="Deterministic kernels."))
    precision: str = field(default="fp32", metadata=switch(
        "--precision", help="fp32 | bf16 | fp16 (autocast on GPU only).", commands=BOTH))
    device: str = field(default="auto", metadata=switch("--device", help="auto | cpu | cuda.", commands=BOTH))
    select: str = field(default="last", metadata=switch(
        "--select", help="last (default) | val (held-out part of train) | best-test-war (authors' rule)."))
    val_fraction: float = field(default=0.1, metadata=switch(
        "--val-fraction", help="Share of train held out with --select val."))
    ckpt_every_steps: int = field(default=0, metadata=switch(
        "--ckpt-every-steps", help="Also save last.pt every N optimiser steps."))
    logger: str = field(default="none", metadata=switch(  # trainer.tracking
        "--logger", help="none | tensorboard | wandb | mlflow (files under the run folder)."))
    compile: bool = field(default=False, metadata=switch(  # trainer.accel
        "--compile/--no-compile", help="torch.compile the image encoder and the temporal model."))

    def __post_init__(self) -> None:
        if isinstance(self.data, dict):
            self.data = _build(DataConfig, self.data, "data")
        if isinstance(self.optim, dict):
            self.optim = _build(OptimConfig, self.optim, "optim")
        if isinstance(self.text, dict):
            self.text = _build(TextConfig, self.text, "text")
        if isinstance(self.model, dict):
            # a mapping of ModelConfig fields (config.json of any run, older ones held only some)
            self.model = _build(ModelConfig, {**self.model, "num_frames": self.data.num_segments}, "model")
        if not isinstance(self.model, ModelConfig):
            raise ConfigError(f"model must be a mapping of ModelConfig fields; got {self.model!r}")
        if self.model.num_frames != self.data.num_segments:  # frames follow data.num_segments
            self.model = dataclasses.replace(self.model, num_frames=self.data.num_segments)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}; got {self.device!r}")
        if self.select not in SELECTIONS:
            raise ConfigError(f"select must be one of {', '.join(SELECTIONS)}; got {self.select!r}")
        if self.select == "val" and not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in (0, 1) with --select val; got {self.val_fraction!r}")
        if self.logger not in LOGGERS:
            raise ConfigError(f"logger must be one of {', '.join(LOGGERS)}; got {self.logger!r}")
        if self.model.clip_texts is not None and self.optim.mixup > 0:
            raise ConfigError("--mixup blends two clips' frames, a clip text describes one clip: use --mixup or "
                              "--clip-texts, not both")
        if self.ckpt_every_steps < 0:
            raise ConfigError(f"ckpt_every_steps must be >= 0 (0: only at epoch end); got {self.ckpt_every_steps!r}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["optim"]["milestones"] = list(self.optim.milestones)
        return out

    def model_config(self) -> ModelConfig:
        """The validated `trainer.model.ModelConfig` of this run (frames follow data.num_segments)."""
        return self.model


def _paper_optim() -> dict[str, Any]:
    return {
        "epochs": 50, "batch": 48, "lr_image": 1e-5, "lr_temporal": 1e-2, "lr_prompt": 1e-3, "lr_head": 1e-3,
        "momentum": 0.9, "weight_decay": 1e-4, "milestones": [30, 40], "gamma": 0.1,
    }


def preset(name: str) -> dict[str, Any]:
    """The preset `name` as a plain nested dict (apply overrides, then `config_from_dict`)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    if name == "default":
        # The embedded run: the shipped tiny face-CLIP (pretrained on the face world's captions, see
        # docs/world.md) fine-tuned on the world's clips, whose classes differ in shape only. Its
        # backbone is small and already knows the world, so it takes larger learning rates than the
        # paper's (SGD as in the paper), CLIP mean/std input normalisation and a few short epochs; it
        # learns in a few minutes on two CPU cores.
        return {
            "preset": "default",
            "model": {"backbone": "tinyface", "pretrained": "world", "normalize": "clip"},
            "data": {"num_segments": 8, "augment": "light", "workers": 1, "synth_train_per_class": 60,
                     "synth_test_per_class": 20, "synth_size": 96},
            "optim": {
                "optimizer": "sgd", "epochs": 8, "batch": 16, "lr_image": 2e-3, "lr_temporal": 1e-2,
                "lr_prompt": 1e-2, "lr_head": 1e-2, "momentum": 0.9, "weight_decay": 1e-4, "milestones": [6],
                "gamma": 0.1, "clip_grad": 1.0,
            },
            "text": {"source": "descriptions", "descriptions": "dfew/v1"},
        }
    spec = next(spec for spec in DATASETS.values() if spec.preset == name)
    return {
        "preset": name,
        # The paper fine-tunes OpenAI's CLIP weights: found offline (HF cache or ~/.cache/clip), and a
        # missing file is one clear error, never a silent start from random weights.
        "model": {"backbone": "ViT-B-32", "quick_gelu": True, "pretrained": "openai"},
        "data": {"dataset": spec.name, "augment": spec.augment, "num_segments": 16, "workers": 4},
        "optim": _paper_optim(),
        "text": {"source": "descriptions", "descriptions": "v1"},
    }


def config_from_dict(raw: dict[str, Any]) -> RunConfig:
    """Build and validate a RunConfig from a nested dict (unknown keys are an error naming them)."""
    return _build(RunConfig, raw, "")


def _build(cls: type, raw: Any, where: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"config section {where or 'root'!r} must be a mapping; got {raw!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(
            f"unknown config key {prefix}{unknown[0]}; known keys: {', '.join(sorted(prefix + n for n in names))}"
        )
    _check_numbers(cls, raw, where)
    try:
        return cls(**raw)
    except TypeError as exc:
        raise ConfigError(f"bad config section {where or 'root'!r}: {exc}") from exc


def _check_numbers(cls: type, raw: dict[str, Any], where: str) -> None:
    """Sections must be mappings and number / switch fields numbers / booleans (a JSON file can hold
    anything; a wrong type would otherwise fail deep inside the run)."""
    prefix = f"{where}." if where else ""
    for name, hint in typing.get_type_hints(cls).items():
        if name not in raw:
            continue
        value, args = raw[name], typing.get_args(hint)
        optional = type(None) in args
        if value is None and optional:
            continue
        base = next(a for a in args if a is not type(None)) if optional else hint
        if dataclasses.is_dataclass(base):
            ok = isinstance(value, (dict, base))
        elif base is bool:
            ok = isinstance(value, bool)
        elif base is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif base is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok and not math.isfinite(value):
                raise ConfigError(f"{prefix}{name} must be a finite number; got {value!r}")
        else:
            continue
        if not ok:
            kind = {bool: "true or false", int: "an integer", float: "a number"}.get(base, "a mapping")
            raise ConfigError(f"{prefix}{name} must be {kind}; got {value!r}")


def apply_set(raw: dict[str, Any], assignment: str) -> dict[str, Any]:
    """Apply one `--set key=value` (dotted key) to a nested RunConfig dict, the value read as the
    type of the field it targets."""
    return set_value(raw, assignment, RunConfig)


def resolve_config(
    preset_name: str = "default",
    config_file: str | Path | None = None,
    options: dict[str, Any] | None = None,
    sets: list[str] | None = None,
) -> RunConfig:
    """Preset -> config file -> explicit options (nested dict, None values skipped) -> --set."""
    raw = layered_config(preset_name, config_file, options)
    for assignment in sets or []:
        raw = apply_set(raw, assignment)
    return config_from_dict(raw)


def layered_config(preset_name: str = "default", config_file: str | Path | None = None,
                   options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The nested dict of preset -> config file -> explicit options (None values skipped)."""
    raw = preset(preset_name)
    if config_file is not None:
        raw = merge(raw, load_config_file(config_file))
    if options:
        raw = merge(raw, drop_none(options))
    return raw
