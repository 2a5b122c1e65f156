"""`promptkit generate`: ask the LLM about every class, parse, rank, fit, and store a new version.

Everything that can fail is checked before anything is written: the class list, the template,
the store, the API key, every answer, every budget. Only then is one new version file created.
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
from promptkit.sets import ClassEntry, DescriptorSet, toolkit_version
from promptkit.store import Store
from promptkit.templates import DEFAULT_QUERY_TEMPLATE, TemplateSource, load_template, render_source
from promptkit.tokens import DEFAULT_N_CTX, budget, fit_descriptors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateConfig:
    """What to generate: the classes, the query template, samples per class, the context length."""

    classes: str
    name: str | None = None  # class-set name for the user's own classes
    template: str = DEFAULT_QUERY_TEMPLATE
    samples: int = 1
    n_ctx: int = DEFAULT_N_CTX
    llm: LLMConfig = field(default_factory=LLMConfig)

    def __post_init__(self) -> None:
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or not 1 <= self.samples <= 50:
            raise PromptkitError(f"--samples must be between 1 and 50, got {self.samples!r}")
        budget(self.n_ctx)  # raises BudgetError for a bad --contexts


def build_prompts(class_set: ClassSet, source: TemplateSource) -> list[str]:
    """The rendered query for every class, in label order."""
    return [render_source(source, class_name=name) for name in class_set.classes]


def build_entry(name: str, answers: list[str], n_ctx: int) -> ClassEntry:
    """Parse a class's answers, rank the descriptors across samples, and fit them to the budget."""
    parsed = [parse_answer(answer) for answer in answers]
    for index, descriptors in enumerate(parsed):
        if not descriptors:
            log.warning("class %r: sample %d held no usable descriptor", name, index)
    ranked = rank_descriptors(parsed)
    if not ranked:
        first = next((a for a in answers if a.strip()), "")
        shown = " ".join(first.split())[:80] or "(empty)"
        raise ParseError(
            f"no usable descriptor in the LLM answer for class {name!r} (answer began: {shown!r}): "
            "try another --model or --template"
        )
    fit = fit_descriptors(ranked, n_ctx, label=name)
    if fit.dropped:
        log.info("class %r: dropped %d descriptor(s) to fit %d tokens", name, len(fit.dropped), fit.budget)
    return ClassEntry(
        name=name,
        descriptors=fit.kept,
        description=fit.description,
        tokens=fit.tokens,
        raw_answers=list(answers),
        dropped=fit.dropped,
    )


def build_entries(class_set: ClassSet, answers: list[list[str]], n_ctx: int) -> list[ClassEntry]:
    """Entries for every class; a ParseError naming the first class without a usable descriptor (and
    how many others failed) when any class's answers are chatter, a refusal or empty."""
    entries: list[ClassEntry] = []
    failed: list[tuple[str, ParseError]] = []
    for name, samples in zip(class_set.classes, answers):
        try:
            entries.append(build_entry(name, samples, n_ctx))
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
    source = load_template(config.template)
    prompts = build_prompts(class_set, source)
    store.check_can_add(class_set.name, list(class_set.classes))
    base_url = config.llm.resolved_base_url()
    answers = ask_all(config.llm, prompts, config.samples)
    entries = build_entries(class_set, answers, config.n_ctx)
    provenance = {
        "source": "llm",
        "model": config.llm.model,
        "endpoint_host": endpoint_host(base_url),
        "template": Path(source.name).name if source.user else source.name,
        "template_user_file": source.user,
        "template_sha256": source.sha256,
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
    return store.add(class_set.name, entries, provenance, config.n_ctx)
