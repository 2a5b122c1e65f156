"""What a run reads: its class set, the class texts, and the train / val / test clip lists.

- Class set: the dataset's (`--dataset`), else `data.classes` (`dfew`, `"a,b,c"`, a file), else
  the descriptor set's when the reference names one (`mafw/v2`, `mafw`, a JSON path), else `dfew` (the
  synthetic set uses the DFEW label order).
- Texts: a descriptor set resolved in that class set (`--descriptions v2`), the class names
  (`--text classnames`), or a manual template (`--text template:photo_of`). A text set whose class
  count differs from the class set is an error.
- Clips: the dataset's standard split files, `--train-list/--test-list`, or the synthetic set
  (generated once, then reused from its cache folder).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from promptkit.classes import ClassSet, resolve_classes
from promptkit.errors import StoreError
from promptkit.quality import set_text_problems
from promptkit.random_words import random_words_like
from promptkit.store import Store, is_bare_version, resolve_store_root

from trainer.config import RunConfig
from trainer.data.annotations import read_annotations, standard_split
from trainer.data.registry import DATASETS
from trainer.errors import InputError, TextsError
from trainer.model.texts import ClassTexts

log = logging.getLogger(__name__)


@dataclass
class RunInputs:
    """Resolved inputs of one run."""

    class_set: str
    classes: tuple[str, ...]
    texts: Any  # trainer.model.ClassTexts
    text_info: dict[str, Any]
    train: list  # list[ClipRecord]
    val: list | None
    test: list


def resolve_class_set(config: RunConfig, ds: Any = None):
    """The run's promptkit ClassSet (see the module docstring for the order of sources). `ds`: the
    run's descriptor set when already loaded (`load_descriptor_set`), so it is read only once."""
    data = config.data
    if data.dataset is not None:
        return resolve_classes(DATASETS[data.dataset].class_set)
    if data.classes:
        return resolve_classes(data.classes)
    if _names_own_set(config):
        ds = ds if ds is not None else load_descriptor_set(config, None)
        return ClassSet(ds.class_set, tuple(e.name for e in ds.classes))
    return resolve_classes("dfew")


def _names_own_set(config: RunConfig) -> bool:
    """Does the run's descriptor reference name its own class set (`mafw/v2`, `mafw`, a JSON path)?"""
    # the store's own reading of a reference: anything but a bare `vN` / `latest` names its set
    return config.text.source in ("descriptions", "random_words") and not is_bare_version(config.text.descriptions)


def load_descriptor_set(config: RunConfig, class_set: str | None):
    """The run's descriptor set, its reference resolved in the context of `class_set` (one store call)."""
    return Store(resolve_store_root(config.text.store)).resolve(config.text.descriptions, class_set)


def build_texts(config: RunConfig, class_set, ds: Any = None) -> tuple[Any, dict[str, Any]]:
    """ClassTexts for the run and a record of where they came from (for checkpoints). `ds`: the
    descriptor set when already loaded."""
    classes = tuple(class_set.classes)
    text = config.text
    info: dict[str, Any] = {"source": text.source}
    if text.source in ("descriptions", "random_words"):
        if ds is None:
            try:
                ds = load_descriptor_set(config, class_set.name)
            except StoreError as exc:
                raise InputError(f"{exc}; pass --descriptions with a set written for the classes of "
                                 f"{class_set.name!r}, or --text classnames") from None
        try:
            texts = ClassTexts.from_descriptor_set(ds, negatives=config.model.negatives,
                                                   variants=config.model.multi_descriptions)
        except TextsError as exc:
            raise InputError(str(exc)) from None
        if text.source == "descriptions":  # negatives that repeat the positive, variants all alike: said, not refused
            for problem in set_text_problems(ds, negatives=config.model.negatives,
                                             variants=config.model.multi_descriptions):
                log.warning("%s", problem)
        info.update(set_id=ds.set_id, content_hash=ds.content_hash, known_hashes=list(ds.known_hashes))
        if text.source == "random_words":  # WaffleCLIP's control: same token lengths, random words
            texts = _random_words(texts, config.seed)
            info.update(content_hash=texts.content_hash, known_hashes=[texts.content_hash], random_words_seed=config.seed)
    elif config.model.negatives or config.model.multi_descriptions:
        flag = "--negatives" if config.model.negatives else "--multi-descriptions"
        raise InputError(f"{flag} needs a descriptor set that has them; --text {text.source} gives one plain text per "
                         "class (use --text descriptions with such a set)")
    elif text.source == "classnames":
        texts = ClassTexts.from_class_names(classes)
    else:
        texts = ClassTexts.from_template(classes, text.template)
        info["template"] = text.template
    info.setdefault("content_hash", texts.content_hash)
    if len(texts.classes) != len(classes):
        raise InputError(
            f"the class texts have {len(texts.classes)} classes but the class set {class_set.name!r} has "
            f"{len(classes)}; use a descriptor set written for {class_set.name} (or --classes matching the texts)"
        )
    texts = _texts_in_label_order(texts, classes, class_set.name, info)
    return texts, info


def _random_words(texts: ClassTexts, seed: int) -> ClassTexts:
    """Every text (negatives and several descriptions too) replaced by random words of its token length."""
    negatives = None if texts.negatives is None else tuple(random_words_like(texts.negatives, seed + 1))
    variants = None
    if texts.variants is not None:
        flat = iter(random_words_like([t for v in texts.variants for t in v], seed + 2))
        variants = tuple(tuple(next(flat) for _ in v) for v in texts.variants)
    return ClassTexts(texts.classes, random_words_like(texts.texts, seed), "random_words", None, negatives, variants)


def _texts_in_label_order(texts, classes: tuple[str, ...], set_name: str, info: dict[str, Any]):
    """The texts re-ordered to the class set's labels by class name: label i always gets the text
    written for class i. Names that differ (not just their order) are an InputError."""
    named = {t.lower(): i for i, t in enumerate(texts.classes)}
    if tuple(named) == tuple(c.lower() for c in classes):
        return texts
    missing = [c for c in classes if c.lower() not in named]
    if missing or len(named) != len(classes):
        extra = [t for t in texts.classes if t.lower() not in {c.lower() for c in classes}]
        raise InputError(
            f"the class texts ({info.get('set_id') or texts.source}) are for classes {list(texts.classes)}, "
            f"the class set {set_name!r} has {list(classes)} (no text for {missing}, unused {extra}); "
            "every label needs the text of its own class: use a descriptor set written for these classes, "
            "or --classes naming the texts' classes"
        )
    order = [named[c.lower()] for c in classes]
    log.warning("the class texts list the classes in another order (%s); each label uses its own class's "
                "text, matched by name", ", ".join(texts.classes))
    info["reordered_by_name"] = True
    return texts.reordered(order, classes)


def synthetic_dir(config: RunConfig) -> Path:
    """Where the synthetic set lives: data.synth_dir, else a cache folder keyed by its settings."""
    data = config.data
    if data.synth_dir:
        return Path(data.synth_dir).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dferclip-toolkit"
    style = "" if data.synth_style == "cartoon" else f"-{data.synth_style}"
    return cache / (f"synth4-s{data.synth_seed}-n{data.synth_train_per_class}-{data.synth_test_per_class}"
                    f"-px{data.synth_size}{style}")


def ensure_synthetic(config: RunConfig, write: bool = True) -> tuple[Path, Path]:
    """(train.txt, test.txt) of the synthetic set; generated when absent (reused when present)."""
    folder = synthetic_dir(config)
    if write:
        from trainer.data.synthetic import generate

        data = config.data
        made = generate(folder, train_per_class=data.synth_train_per_class, test_per_class=data.synth_test_per_class,
                        size=data.synth_size, seed=data.synth_seed, style=data.synth_style,
                        workers=max(1, min(2, os.cpu_count() or 1)))
        return made.train_list, made.test_list
    return folder / "train.txt", folder / "test.txt"


def clip_lists(config: RunConfig, write_synthetic: bool = True) -> tuple[Path, Path]:
    """(train list, test list) paths of the run."""
    data = config.data
    if data.dataset is not None:
        return standard_split(data.dataset, data.data_root, data.fold)
    if data.train_list is not None:
        return Path(data.train_list).expanduser(), Path(data.test_list).expanduser()
    return ensure_synthetic(config, write=write_synthetic)


def split_validation(records: list, fraction: float, seed: int) -> tuple[list, list]:
    """Stratified, seeded hold-out: about `fraction` of each class (at least one clip of a class with
    two or more) goes to validation. Returns (train, val) in the records' original order."""
    rng = np.random.default_rng([seed, 0x7A1])
    by_class: dict[int, list[int]] = {}
    for i, rec in enumerate(records):
        by_class.setdefault(rec.label, []).append(i)
    val_idx: set[int] = set()
    for label in sorted(by_class):
        members = by_class[label]
        n_val = int(round(fraction * len(members)))
        n_val = min(max(n_val, 1 if len(members) >= 2 else 0), len(members) - 1)
        val_idx.update(rng.permutation(members)[:n_val].tolist())
    if not val_idx:
        raise InputError(f"--val-fraction {fraction} leaves no validation clips; raise it or use --select last")
    train = [r for i, r in enumerate(records) if i not in val_idx]
    val = [r for i, r in enumerate(records) if i in val_idx]
    return train, val


def check_overlap(train: list, test: list, allow: bool = False) -> int:
    """Clips listed in both train and test (same resolved path): an InputError giving the count and
    the first ones, unless `allow` (then a logged warning). Returns the number shared."""
    def key(rec) -> str:
        try:
            return str(rec.path.resolve())
        except OSError:
            return str(rec.path)

    test_keys = {key(r): r for r in test}
    shared = [(r, test_keys[key(r)]) for r in train if key(r) in test_keys]
    if not shared:
        return 0
    shown = "; ".join(f"{tr.path} ({tr.source} and {te.source})" for tr, te in shared[:3])
    more = f" and {len(shared) - 3} more" if len(shared) > 3 else ""
    message = (f"{len(shared)} clip(s) are in both the train and the test list: {shown}{more}")
    if not allow:
        raise InputError(f"{message}; test results would be inflated. Fix the lists, or pass --allow-overlap "
                         "(data.allow_overlap=true) to train anyway")
    log.warning("%s (allowed by --allow-overlap)", message)
    return len(shared)


def resolve_inputs(config: RunConfig, write_synthetic: bool = True) -> RunInputs:
    """Everything a run reads, checked against each other."""
    ds = load_descriptor_set(config, None) if _names_own_set(config) else None  # read (and hash-checked) once
    class_set = resolve_class_set(config, ds)
    classes = tuple(class_set.classes)
    texts, info = build_texts(config, class_set, ds)
    train_list, test_list = clip_lists(config, write_synthetic)
    root = config.data.data_root
    train = read_annotations(train_list, root, num_classes=len(classes), classes=classes)
    test = read_annotations(test_list, root, num_classes=len(classes), classes=classes)
    check_overlap(train, test, allow=config.data.allow_overlap)
    val = None
    if config.select == "val":
        train, val = split_validation(train, config.val_fraction, config.seed)
    info.update(train_list=str(train_list), test_list=str(test_list))
    return RunInputs(class_set.name, classes, texts, info, train, val, test)
