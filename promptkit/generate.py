"""`promptkit generate`: ask the LLM about every class, parse, rank, fit, and store a new version.

Everything that can fail is checked before anything is written: the class list, the templates,
the store, the API key, every answer, every budget. Only then is one new version file created.

Answers are screened before they are stored (`promptkit.quality`): descriptors not about the face
are dropped, negatives are read as the absent features (never their negation) and must not repeat
the class's own description, and near-duplicate variants are dropped; what was dropped is recorded
in the provenance (`screened`) and printed, and a class left without a usable text fails the run.

Every query of a run goes out in one concurrent `ask_all` call: each query template (CuPL-style,
several questions) asked `samples` times per class, and with `negatives` one more question per
class about what its expression does not show. All answers of a class feed its description (ranked
by frequency); with `variants` each answer is also kept, fitted on its own, as one variant.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from promptkit.classes import ClassSet, resolve_classes
from promptkit.errors import ParseError, PromptkitError
from promptkit.llm import LLMConfig, ask_all, endpoint_host
from promptkit.parse import parse_answer, rank_descriptors
from promptkit.quality import distinct_texts, repeats_of, repeats_too_much, screen_descriptors
from promptkit.sets import ClassEntry, DescriptorSet, NegativeEntry, toolkit_version
from promptkit.store import Store
from promptkit.templates import (
    DEFAULT_NEGATIVE_TEMPLATE,
    DEFAULT_QUERY_TEMPLATE,
    TemplateSource,
    load_template,
    render_source,
)
from promptkit.tokens import DEFAULT_N_CTX, Fit, budget, fit_descriptors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateConfig:
    """What to generate: the classes, the query template(s), samples per class and template, the context
    length, and whether to add negative descriptions and keep each answer as a variant."""

    classes: str
    name: str | None = None  # class-set name for the user's own classes
    template: str | tuple[str, ...] = DEFAULT_QUERY_TEMPLATE  # one or several (each asked `samples` times)
    samples: int = 1
    n_ctx: int = DEFAULT_N_CTX
    llm: LLMConfig = field(default_factory=LLMConfig)
    negatives: bool = False
    negative_template: str | None = None  # None: the shipped llm_negative (only with `negatives`)
    variants: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or not 1 <= self.samples <= 50:
            raise PromptkitError(f"--samples must be between 1 and 50, got {self.samples!r}")
        if not self.templates:
            raise PromptkitError("give at least one --template")
        if self.negative_template is not None and not self.negatives:
            raise PromptkitError(
                f"--negative-template {self.negative_template!r} is the question for negative descriptions, "
                "which only --negatives asks: add --negatives, or leave --negative-template out"
            )
        if self.variants and self.samples * len(self.templates) < 2:
            raise PromptkitError(
                f"--variants keeps one description per answer, so it needs --samples 2 or more "
                f"(or several --template), got --samples {self.samples}"
            )
        budget(self.n_ctx)  # raises BudgetError for a bad --contexts

    @property
    def templates(self) -> tuple[str, ...]:
        return (self.template,) if isinstance(self.template, str) else tuple(self.template)


def build_prompts(class_set: ClassSet, source: TemplateSource) -> list[str]:
    """The rendered query for every class, in label order."""
    return [render_source(source, class_name=name) for name in class_set.classes]


def fit_answers(name: str, answers: list[str], n_ctx: int, notes: list[str] | None = None,
                against: list[str] | None = None) -> Fit:
    """Parse a class's answers, screen the descriptors (`quality.screen_descriptors`), rank them across
    the answers, and fit them to the budget. `against`: the class's own descriptors, when `answers`
    answer the negative question (a negative that repeats them beyond the threshold is refused, the
    overlapping descriptors are dropped). What is dropped or re-read is added to `notes`."""
    notes = notes if notes is not None else []
    kind, hint = ("negative ", "--negative-template") if against is not None else ("", "--template")
    parsed, screened = [], []
    for index, answer in enumerate(answers):
        kept, said = screen_descriptors(parse_answer(answer), negative=against is not None)
        screened += said
        if not kept:
            log.warning("class %r: %sanswer %d held no usable descriptor", name, kind, index)
        parsed.append(kept)
    notes += [f"class {name!r}: {kind}{note}" for note in dict.fromkeys(screened)]
    ranked = rank_descriptors(parsed)
    if not ranked:
        first = next((a for a in answers if a.strip()), "")
        shown = " ".join(first.split())[:80] or "(empty)"
        why = f"; {screened[0]}" if screened else ""
        raise ParseError(
            f"no usable descriptor in the LLM {kind}answer for class {name!r} (answer began: {shown!r}{why}): "
            f"try another --model or {hint}"
        )
    if against is not None:
        ranked = _without_repeats(name, ranked, against, notes)
    fit = fit_descriptors(ranked, n_ctx, label=name)
    if fit.dropped:
        log.info("class %r: dropped %d %sdescriptor(s) to fit %d tokens", name, len(fit.dropped), kind, fit.budget)
    return fit


def _without_repeats(name: str, negatives: list[str], positives: list[str], notes: list[str]) -> list[str]:
    """The negative descriptors that do not repeat the class's own; a ParseError when most of them do."""
    repeated = repeats_of(negatives, positives)
    if repeats_too_much(repeated, negatives):
        raise ParseError(
            f"the LLM's negative answer for class {name!r} repeats its own description ({len(repeated)} of "
            f"{len(negatives)} features, e.g. {repeated[0]!r}) instead of naming what the expression does not "
            "show (the server may ignore the negation): try another --model or --negative-template"
        )
    if repeated:
        notes.append(f"class {name!r}: negative dropped {', '.join(map(repr, repeated))} (also in its own description)")
    return [phrase for phrase in negatives if phrase not in repeated]


def fit_variants(name: str, answers: list[str], n_ctx: int, notes: list[str] | None = None) -> list[str]:
    """One fitted description per answer that holds a usable descriptor, in answer order, without
    near-duplicates (noted in `notes`); a ParseError when fewer than two distinct ones are left."""
    variants = []
    for answer in answers:
        descriptors, _ = screen_descriptors(parse_answer(answer))
        if descriptors:
            variants.append(fit_descriptors(descriptors, n_ctx, label=name).description)
    if not variants:
        raise ParseError(f"no answer for class {name!r} held a usable descriptor, so it has no variant")
    kept, repeated = distinct_texts(variants)
    if len(kept) < 2:
        raise ParseError(
            f"the {len(variants)} answers for class {name!r} give one distinct variant ({kept[0]!r}), not several "
            "(the server may ignore --seed and --temperature): raise --temperature, or ask differently worded --template questions"
        )
    if repeated and notes is not None:
        notes.append(f"class {name!r}: dropped {len(repeated)} variant(s) repeating another, e.g. {repeated[0]!r}")
    return kept


def build_entry(
    name: str, answers: list[str], n_ctx: int, negative_answers: list[str] | None = None, variants: bool = False,
    notes: list[str] | None = None,
) -> ClassEntry:
    """A class's entry: the merged description from all `answers`, with `negative_answers` its negative
    description, and with `variants` one description per answer; what was dropped goes to `notes`."""
    fit = fit_answers(name, answers, n_ctx, notes)
    negative = None
    if negative_answers is not None:
        neg = fit_answers(name, negative_answers, n_ctx, notes, against=fit.kept + fit.dropped)
        negative = NegativeEntry(neg.kept, neg.description, neg.tokens, list(negative_answers), neg.dropped)
    return ClassEntry(
        name=name,
        descriptors=fit.kept,
        description=fit.description,
        tokens=fit.tokens,
        raw_answers=list(answers),
        dropped=fit.dropped,
        negative=negative,
        variants=fit_variants(name, answers, n_ctx, notes) if variants else [],
    )


def build_entries(
    class_set: ClassSet,
    answers: list[list[str]],
    n_ctx: int,
    negative_answers: list[list[str]] | None = None,
    variants: bool = False,
    notes: list[str] | None = None,
) -> list[ClassEntry]:
    """Entries for every class; a ParseError naming the first class without a usable text (and how many
    others failed) when any class's answers (or negative answers) are chatter, a refusal, empty, a
    negative that repeats the positive, or variants that are all alike. Drops go to `notes`."""
    entries: list[ClassEntry] = []
    failed: list[tuple[str, ParseError]] = []
    for index, (name, samples) in enumerate(zip(class_set.classes, answers)):
        negative = negative_answers[index] if negative_answers is not None else None
        try:
            entries.append(build_entry(name, samples, n_ctx, negative, variants, notes))
        except ParseError as exc:
            failed.append((name, exc))
    if failed:
        first = str(failed[0][1])
        if len(failed) > 1:
            others = ", ".join(repr(name) for name, _ in failed[1:4]) + (", ..." if len(failed) > 4 else "")
            first += f" (also no usable text for {len(failed) - 1} other class(es): {others}); nothing was written"
        else:
            first += "; nothing was written"
        raise ParseError(first)
    return entries


def generate_set(config: GenerateConfig, store: Store) -> DescriptorSet:
    """Run the whole generation and write one new version to `store`."""
    class_set = resolve_classes(config.classes, config.name)
    sources = [load_template(name) for name in config.templates]
    negative_source = load_template(config.negative_template or DEFAULT_NEGATIVE_TEMPLATE) if config.negatives else None
    prompts = [prompt for source in sources for prompt in build_prompts(class_set, source)]
    if negative_source is not None:
        prompts += build_prompts(class_set, negative_source)
    store.check_can_add(class_set.name, list(class_set.classes))
    base_url = config.llm.resolved_base_url()
    answers = ask_all(config.llm, prompts, config.samples)  # result[prompt][sample]
    n_classes = len(class_set.classes)
    # per class: template 1's samples, then template 2's, ...
    positive = [[a for t in range(len(sources)) for a in answers[t * n_classes + c]] for c in range(n_classes)]
    negative = answers[len(sources) * n_classes:] if negative_source is not None else None
    notes: list[str] = []
    entries = build_entries(class_set, positive, config.n_ctx, negative, config.variants, notes)
    provenance = {
        "source": "llm",
        "model": config.llm.model,
        "endpoint_host": endpoint_host(base_url),
        "template": _template_name(sources[0]),
        "template_user_file": sources[0].user,
        "template_sha256": sources[0].sha256,
        "sampling": {
            "samples": config.samples,
            "temperature": config.llm.temperature,
            "seed": config.llm.seed,
            "max_tokens": config.llm.max_tokens,
        },
        "class_spec": class_set.name if class_set.builtin else config.classes,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "promptkit_version": toolkit_version(),
    }
    if len(sources) > 1:
        provenance["templates"] = [_template_name(source) for source in sources]
        provenance["templates_sha256"] = [source.sha256 for source in sources]
    if negative_source is not None:
        provenance["negative_template"] = _template_name(negative_source)
        provenance["negative_template_user_file"] = negative_source.user
        provenance["negative_template_sha256"] = negative_source.sha256
    if config.variants:
        provenance["variants"] = True  # each answer kept as one variant
    if notes:
        provenance["screened"] = notes  # what the answer checks dropped or re-read (the raw answers are kept)
    return store.add(class_set.name, entries, provenance, config.n_ctx)


def _template_name(source: TemplateSource) -> str:
    """A template's name for provenance: the shipped stem, or a user file's name (never its full path)."""
    return Path(source.name).name if source.user else source.name
