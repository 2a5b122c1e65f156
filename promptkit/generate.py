"""`promptkit generate`: ask the LLM about every class, parse, rank, fit, and store a new version.

Everything that can fail is checked before anything is written: the class list, the templates,
the store, the API key, every answer, every budget. Only then is one new version file created.

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


def fit_answers(name: str, answers: list[str], n_ctx: int, kind: str = "", hint: str = "--template") -> Fit:
    """Parse a class's answers, rank the descriptors across them, and fit them to the budget.
    `kind` ("negative ") names the question in messages; `hint` the option to change."""
    parsed = [parse_answer(answer) for answer in answers]
    for index, descriptors in enumerate(parsed):
        if not descriptors:
            log.warning("class %r: %sanswer %d held no usable descriptor", name, kind, index)
    ranked = rank_descriptors(parsed)
    if not ranked:
        first = next((a for a in answers if a.strip()), "")
        shown = " ".join(first.split())[:80] or "(empty)"
        raise ParseError(
            f"no usable descriptor in the LLM {kind}answer for class {name!r} (answer began: {shown!r}): "
            f"try another --model or {hint}"
        )
    fit = fit_descriptors(ranked, n_ctx, label=name)
    if fit.dropped:
        log.info("class %r: dropped %d %sdescriptor(s) to fit %d tokens", name, len(fit.dropped), kind, fit.budget)
    return fit


def fit_variants(name: str, answers: list[str], n_ctx: int) -> list[str]:
    """One fitted description per answer that holds a usable descriptor, in answer order."""
    variants = []
    for answer in answers:
        descriptors = parse_answer(answer)
        if descriptors:
            variants.append(fit_descriptors(descriptors, n_ctx, label=name).description)
    if not variants:
        raise ParseError(f"no answer for class {name!r} held a usable descriptor, so it has no variant")
    return variants


def build_entry(
    name: str, answers: list[str], n_ctx: int, negative_answers: list[str] | None = None, variants: bool = False
) -> ClassEntry:
    """A class's entry: the merged description from all `answers`, with `negative_answers` its negative
    description, and with `variants` one description per answer."""
    fit = fit_answers(name, answers, n_ctx)
    negative = None
    if negative_answers is not None:
        neg = fit_answers(name, negative_answers, n_ctx, kind="negative ", hint="--negative-template")
        negative = NegativeEntry(neg.kept, neg.description, neg.tokens, list(negative_answers), neg.dropped)
    return ClassEntry(
        name=name,
        descriptors=fit.kept,
        description=fit.description,
        tokens=fit.tokens,
        raw_answers=list(answers),
        dropped=fit.dropped,
        negative=negative,
        variants=fit_variants(name, answers, n_ctx) if variants else [],
    )


def build_entries(
    class_set: ClassSet,
    answers: list[list[str]],
    n_ctx: int,
    negative_answers: list[list[str]] | None = None,
    variants: bool = False,
) -> list[ClassEntry]:
    """Entries for every class; a ParseError naming the first class without a usable descriptor (and
    how many others failed) when any class's answers (or negative answers) are chatter, a refusal or empty."""
    entries: list[ClassEntry] = []
    failed: list[tuple[str, ParseError]] = []
    for index, (name, samples) in enumerate(zip(class_set.classes, answers)):
        negative = negative_answers[index] if negative_answers is not None else None
        try:
            entries.append(build_entry(name, samples, n_ctx, negative, variants))
        except ParseError as exc:
            failed.append((name, exc))
    if failed:
        first = str(failed[0][1])
        if len(failed) > 1:
            others = ", ".join(repr(name) for name, _ in failed[1:4]) + (", ..." if len(failed) > 4 else "")
            first += f" (also no descriptor for {len(failed) - 1} other class(es): {others}); nothing was written"
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
    entries = build_entries(class_set, positive, config.n_ctx, negative, config.variants)
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
    return store.add(class_set.name, entries, provenance, config.n_ctx)


def _template_name(source: TemplateSource) -> str:
    """A template's name for provenance: the shipped stem, or a user file's name (never its full path)."""
    return Path(source.name).name if source.user else source.name
