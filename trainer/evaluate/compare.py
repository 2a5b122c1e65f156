"""Compare prompt variants on one test split: manual templates zero-shot vs learned contexts.

The paper's prompt ablation as one call. Every variant is scored on the same clips with the same
metrics (UAR, WAR, per-class recall, from `trainer.metrics` through `trainer.engine`):

- zero-shot: each manual template (`photo_of`, `expression_of`, `class_name`, `description`, or a
  user `.j2`) rendered per class, with the frozen backbone and the mean frame feature. All
  templates share one backbone and one pass over the clips; only the class texts differ.
  `random_words` (opt-in) is the `description` template with each description replaced by seeded
  random words of the same token length (WaffleCLIP's control, `promptkit.random_words`).
  `negatives` and `multi_descriptions` (opt-in, for a descriptor set that has them) score the
  descriptions with the negative descriptions subtracted, or with each class's several
  descriptions averaged, exactly as `trainer run --negatives` / `--multi-descriptions` do.
- trained: `trainer run` folders (`--run DIR`), and, with `train=True`, the learned-context
  variants (context + class names, context + descriptions) trained here with one budget.

The test split, backbone, descriptions and training budget come from one `trainer.config.RunConfig`
(the same options `trainer run` takes, mapped by `trainer.options`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import jinja2
import jinja2.meta
import torch

from promptkit.errors import TemplateError
from promptkit.random_words import NAME as RANDOM_WORDS
from promptkit.random_words import random_words_like
from promptkit.store import Store, resolve_store_root
from promptkit.templates import load_template, render_classes

from trainer.config import config_from_dict
from trainer.data.annotations import read_annotations
from trainer.data.dataset import VideoClipDataset
from trainer.distributed import DistContext, pick_device
from trainer.errors import EvalError, TrainerError
from trainer.evaluate.common import save_figure, write_csv, write_json
from trainer.inference import load_for_inference, resolve_checkpoint
from trainer.inputs import clip_lists, resolve_class_set
from trainer.model.backbone import create_backbone
from trainer.model.dferclip import DFERCLIP
from trainer.model.texts import ClassTexts
from trainer.options import config_from_options
from trainer.protocol import start_run
from trainer.scoring import eval_loader, evaluate, split_metrics

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES = ("photo_of", "expression_of", "class_name", "description")
CLASS_VARIABLES = ("class_name", "description")
SET_ROWS = ("negatives", "multi_descriptions")  # rows built from the descriptor set's extra texts
ZS_NORMALIZE = ("clip", "none")
TRAINED_VARIANTS = (("ctx+classnames", "classnames", "ctx_classnames"),
                    ("ctx+descriptions", "descriptions", "ctx_descriptions"))  # (variant, text source, run folder)


@dataclass
class CompareConfig:
    """What to compare. `run` (a trainer RunConfig) fixes the test split, backbone and budget."""
    run: Any
    templates: tuple[str, ...] = DEFAULT_TEMPLATES
    runs: tuple[str, ...] = ()
    train: bool = False
    out: Path = Path("compare")
    zs_normalize: str = "clip"
    eval_batch: int = 16
    base_weights: str | None = None  # where a --run's PEFT delta finds its base weights, if they moved

    def __post_init__(self) -> None:
        self.templates = tuple(self.templates)
        self.runs = tuple(str(r) for r in self.runs)
        self.out = Path(self.out)
        if self.zs_normalize not in ZS_NORMALIZE:
            raise EvalError(f"zero-shot normalisation must be one of {', '.join(ZS_NORMALIZE)}; got {self.zs_normalize!r}")
        if isinstance(self.eval_batch, bool) or not isinstance(self.eval_batch, int) or self.eval_batch < 1:
            raise EvalError(f"--eval-batch must be an integer >= 1; got {self.eval_batch!r}")
        if not (self.templates or self.runs or self.train):
            raise EvalError("nothing to compare: give --template, --run or --train")


@dataclass
class CompareRow:
    variant: str
    kind: str  # zero-shot | trained
    texts: str  # what the classes were prompted with
    uar: float
    war: float
    recall: dict[str, float | None]
    source: str = ""  # template file or checkpoint
    confusion: list[list[int]] = field(default_factory=list)


@dataclass
class TestSplit:
    class_set: str
    classes: tuple[str, ...]
    records: list
    test_list: str

    @property
    def labels(self) -> list[int]:
        return [r.label for r in self.records]


@dataclass
class CompareResult:
    class_set: str
    classes: list[str]
    test_list: str
    n_clips: int
    rows: list[CompareRow]
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)


def resolve_run_config(preset: str | None, config_file: str | None, options: dict[str, Any],
                       sets: Sequence[str], train: bool):
    """The RunConfig of `trainer run`'s mapping (`trainer.options`); a lone test list is enough without --train."""
    data = options.get("data") or {}
    if train and data.get("test_list") and not data.get("train_list") and not data.get("dataset"):
        raise EvalError("--train needs --train-list as well as --test-list (or --dataset with --data-root)")
    return config_from_options(preset, config_file, options, list(sets), evaluate_only=not train)


# ---------------------------------------------------------------------- inputs
def load_test_split(run_config) -> TestSplit:
    class_set = resolve_class_set(run_config)
    _, test_list = clip_lists(run_config)
    records = read_annotations(test_list, run_config.data.data_root, num_classes=len(class_set.classes),
                               classes=class_set.classes)
    if not records:
        raise EvalError(f"the test list {test_list} holds no clips")
    return TestSplit(class_set.name, tuple(class_set.classes), records, str(test_list))


def load_descriptions(run_config, split: TestSplit):
    """The run config's descriptor set, checked to name the test split's classes in label order."""
    ds = Store(resolve_store_root(run_config.text.store)).resolve(run_config.text.descriptions, split.class_set)
    names = [e.name for e in ds.classes]
    if [n.lower() for n in names] != [c.lower() for c in split.classes]:
        raise EvalError(f"descriptor set {ds.set_id} has classes {names} but the test split uses {split.class_set} "
                        f"{list(split.classes)}; pass --descriptions with a set written for {split.class_set}")
    return ds


def load_checked_template(name_or_path: str):
    """Load a template and check it uses a class variable, so each class gets its own prompt."""
    source = load_template(name_or_path)
    try:
        used = jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(source.text))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template {source.name!r} line {exc.lineno}: {exc.message}") from exc
    if not used & set(CLASS_VARIABLES):
        raise TemplateError(f"template {source.name!r} uses neither {{{{ class_name }}}} nor {{{{ description }}}}, "
                            "so every class would get the same prompt; put {{ class_name }} where the class goes")
    return source, used


def template_texts(source, classes: Sequence[str], ds, random_seed: int | None = None) -> Any:
    """ClassTexts rendered from a template for every class (class_name, description, index); with
    `random_seed`, the descriptions are first replaced by random words of the same token length."""
    descriptions = None if ds is None else [e.description for e in ds.classes]
    if descriptions is not None and random_seed is not None:
        descriptions = list(random_words_like(descriptions, random_seed))
    texts = render_classes(source, classes, descriptions)
    return ClassTexts(tuple(classes), tuple(texts), f"template:{source.name}")


def checked_sources(names: Sequence[str]) -> list[tuple[Any, set[str], str | None]]:
    """(template source, variables it uses, special row or None) per name; `random_words` is the
    `description` template over random-word descriptions, `negatives` / `multi_descriptions` the
    descriptor set's descriptions with its negatives / its several descriptions."""
    out = []
    for name in names:
        special = name if name in (RANDOM_WORDS, *SET_ROWS) else None
        source, used = load_checked_template("description" if special else name)
        out.append((source, used, special))
    return out


def set_row_texts(special: str, classes: Sequence[str], ds) -> Any:
    """The descriptor set's texts with its negatives or several descriptions, under `classes`' names."""
    texts = ClassTexts.from_descriptor_set(ds, negatives=special == "negatives",
                                           variants=special == "multi_descriptions")
    return dataclasses.replace(texts, classes=tuple(classes))


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def variant_name(source_name: str, taken: set[str]) -> str:
    base = Path(source_name).stem if ("/" in source_name or source_name.endswith(".j2")) else source_name
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


# ---------------------------------------------------------------------- evaluation
def clip_outputs(module, records: list, image_size: int, frames: int, ctx, batch: int, workers: int,
                 precision: str, notes: list[str]) -> Any:
    """`module`'s outputs (N, K) for every clip, in record order (the trainer's evaluation loop)."""
    dataset = VideoClipDataset(records, image_size, train=False, num_segments=frames)
    indices, outputs = evaluate(module, eval_loader(dataset, batch, workers), ctx, precision)  # (N,), (N, K)
    summary = dataset.mismatch_summary()
    if summary and summary not in notes:
        notes.append(summary)
        log.warning("%s", summary)
    return outputs[indices.argsort()]  # (N, K)


def score(variant: str, kind: str, texts: str, logits, split: TestSplit, source: str) -> CompareRow:

    m = split_metrics(logits, split.labels, len(split.classes))
    return CompareRow(variant, kind, texts, float(m["uar"]), float(m["war"]),
                      dict(zip(split.classes, m["per_class_recall"])), source, m["confusion"])


class _VideoFeatures:
    """Wraps a DFERCLIP so the evaluation loop returns video features (B, E) instead of logits."""
    def __init__(self, model) -> None:
        self.model = model

    def eval(self) -> "_VideoFeatures":
        self.model.eval()
        return self

    def __call__(self, frames):
        return self.model.video_features(frames)  # (B, E)


def zero_shot_rows(cfg: CompareConfig, sources: Sequence[Any], split: TestSplit, ds, ctx,
                   notes: list[str]) -> list[CompareRow]:
    """Every template (`sources`: (source, special row or None) pairs, from `checked_sources`) on one
    seeded frozen backbone: one pass over the clips, one text set per template."""


    run = cfg.run
    # frozen plain prompts: no PEFT, and negatives / several descriptions only in their own rows
    model_cfg = dataclasses.replace(run.model_config(), mode="zeroshot", normalize=cfg.zs_normalize, peft="none",
                                    negatives=False, multi_descriptions=False)
    with torch.random.fork_rng(devices=[]):  # random (weightless) backbones are seeded, globals untouched
        torch.manual_seed(run.seed)
        backbone = create_backbone(model_cfg)
    model_cfg = dataclasses.replace(model_cfg, image_size=backbone.image_size)
    taken: set[str] = set()
    variants = []
    for source, special in sources:
        row_cfg = model_cfg
        if special in SET_ROWS:
            texts = set_row_texts(special, split.classes, ds)
            row_cfg = dataclasses.replace(model_cfg, negatives=special == "negatives",
                                          multi_descriptions=special == "multi_descriptions")
        else:
            texts = template_texts(source, split.classes, ds, run.seed if special == RANDOM_WORDS else None)
        model = DFERCLIP(row_cfg, texts, backbone).to(ctx.device).eval()
        name = variant_name(special or source.name, taken)
        shown = {RANDOM_WORDS: f"{source.name}, random words seed {run.seed}", None: source.name}.get(special, f"{source.name} + {special}")
        variants.append((name, texts, model, shown))
    feats = clip_outputs(_VideoFeatures(variants[0][2]), split.records, model_cfg.image_size, model_cfg.num_frames,
                         ctx, cfg.eval_batch, run.data.workers, run.precision, notes)  # (N, E)
    rows = []
    for name, texts, model, source in variants:
        with torch.no_grad():
            logits = model.class_logits(feats.to(ctx.device)).cpu()  # (N, C)
        rows.append(score(name, "zero-shot", f"template {source}: {_short(texts.texts[0])!r}", logits, split, source))
    return rows


def run_row(path: str | Path, split: TestSplit, cfg: CompareConfig, ctx, notes: list[str],
            name: str | None = None) -> CompareRow:
    """Evaluate a trained run's checkpoint on the split, after checking it was trained on its classes."""
    ckpt = resolve_checkpoint(path)
    model, state, classes, frames = load_for_inference(ckpt, ctx.device, cfg.base_weights)
    if [c.lower() for c in classes] != [c.lower() for c in split.classes]:
        raise EvalError(f"run {ckpt} was trained on {len(classes)} classes {list(classes)} but the test split uses "
                        f"{split.class_set} {list(split.classes)}; compare runs trained on the same class set")
    logits = clip_outputs(model, split.records, model.image_size, frames, ctx, cfg.eval_batch,
                          cfg.run.data.workers, cfg.run.precision, notes)  # (N, C)
    text = state.get("text") or {}
    texts = text.get("set_id") or text.get("template") or model.texts.source
    described = f"ctx x{model.config.effective_n_ctx} + {text.get('source', model.texts.source)} {texts}".strip()
    label = name or (ckpt.parent.name if ckpt.name in ("best.pt", "last.pt") else ckpt.stem)
    return score(label, "trained", described, logits, split, str(ckpt))


def train_variant(cfg: CompareConfig, source: str, run_dir: Path, ctx, progress) -> Path:
    """Train one learned-context variant into `run_dir` (reused when a finished run has this config)."""
    run_config = dataclasses.replace(cfg.run, text=dataclasses.replace(cfg.run.text, source=source))
    config_path = run_dir / "config.json"
    finished = (run_dir / "summary.json").is_file() and (run_dir / "best.pt").is_file()
    if finished and _saved_config(config_path) == run_config.to_dict():
        if progress is not None:
            progress.note(f"reusing the finished run {run_dir}")
        return run_dir / "best.pt"
    if progress is not None:
        progress.note(f"training {run_dir.name} -> {run_dir}")
    start_run(run_config, run_dir, overwrite=True, ctx=ctx, progress=progress)
    return run_dir / "best.pt"


def _saved_config(path: Path) -> Any:
    """A finished run's config.json as this version writes it (older runs stored only some model
    fields), or None when it is missing, unreadable or invalid (then it is retrained)."""
    try:
        return config_from_dict(json.loads(path.read_text(encoding="utf-8"))).to_dict()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TrainerError):
        return None


def run_compare(cfg: CompareConfig, progress=None) -> CompareResult:
    """Evaluate every variant on the test split; write compare.csv / .json / .png into `cfg.out`."""
    checked = checked_sources(cfg.templates)  # bad templates and run folders
    for path in cfg.runs:  # fail before any model is built
        resolve_checkpoint(path)
    split = load_test_split(cfg.run)
    ctx = DistContext(device=pick_device(cfg.run.device))
    notes: list[str] = []
    needs_ds = cfg.train or any("description" in used or special in SET_ROWS for _, used, special in checked)
    ds = load_descriptions(cfg.run, split) if needs_ds else None
    trained = [run_row(path, split, cfg, ctx, notes) for path in cfg.runs]
    rows = zero_shot_rows(cfg, [(source, special) for source, _, special in checked], split, ds, ctx, notes) if checked else []
    rows += trained
    if cfg.train:
        for name, source, folder in TRAINED_VARIANTS:
            ckpt = train_variant(cfg, source, cfg.out / "runs" / folder, ctx, progress)
            rows.append(run_row(ckpt, split, cfg, ctx, notes, name=name))
    result = CompareResult(split.class_set, list(split.classes), split.test_list, len(split.records), rows, notes)
    result.files = save_compare(result, cfg.out)
    return result


# ---------------------------------------------------------------------- outputs
def save_compare(result: CompareResult, out: Path) -> dict[str, str]:
    out = Path(out)
    header = ["variant", "kind", "texts", "uar", "war", *(f"recall_{c}" for c in result.classes), "source"]
    rows = [[r.variant, r.kind, r.texts, f"{r.uar:.4f}", f"{r.war:.4f}",
             *("" if r.recall[c] is None else f"{r.recall[c]:.4f}" for c in result.classes), r.source]
            for r in result.rows]
    files = {"csv": str(write_csv(out / "compare.csv", header, rows))}
    payload = {k: v for k, v in dataclasses.asdict(result).items() if k != "files"}
    files["json"] = str(write_json(out / "compare.json", payload))
    files["png"] = str(save_figure(bar_chart(result), out / "compare.png"))
    return files


def bar_chart(result: CompareResult):
    """UAR and WAR per variant (grouped bars, values on top), chance level dashed."""
    from matplotlib.figure import Figure

    rows = result.rows
    fig = Figure(figsize=(max(6.0, 1.3 * len(rows) + 2.0), 4.6))
    ax = fig.add_subplot()
    xs = list(range(len(rows)))
    width = 0.38
    for offset, metric, colour in ((-width / 2, "uar", "#4C72B0"), (width / 2, "war", "#DD8452")):
        values = [getattr(r, metric) for r in rows]
        bars = ax.bar([x + offset for x in xs], values, width, label=metric.upper(), color=colour)
        for bar, value in zip(bars, values):
            ax.text(bar.get_x() + bar.get_width() / 2, value + 0.8, f"{value:.1f}", ha="center", fontsize=7)
    chance = 100.0 / max(len(result.classes), 1)
    ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label=f"chance UAR ({chance:.1f})")
    ax.set_xticks(xs, [f"{r.variant}\n({r.kind})" for r in rows], fontsize=8)
    ax.set_ylabel("%")
    ax.set_ylim(0, max([100.0 / 1.1] + [max(r.uar, r.war) for r in rows]) * 1.1)
    ax.set_title(f"prompt variants on {result.class_set} ({result.n_clips} test clips)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
