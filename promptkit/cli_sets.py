"""Descriptor-set commands: generate, list, show, diff, tokens, add, export, import (list, show and
export also handle clip-text sets).

Each command parses its options, calls one library function, and renders the result.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from promptkit import cli_render
from promptkit.cliptexts import ClipTextStore, set_kind
from promptkit.diff import diff_sets
from promptkit.errors import ExchangeError
from promptkit.exchange import export_clip_texts_csv, export_clip_texts_hf, export_csv, export_hf, import_set
from promptkit.generate import GenerateConfig, generate_set
from promptkit.llm import LLMConfig
from promptkit.sets import DescriptorSet
from promptkit.store import Store, resolve_store_root
from promptkit.templates import DEFAULT_QUERY_TEMPLATE
from promptkit.tokens import DEFAULT_N_CTX, token_report

StoreOpt = Annotated[
    Optional[Path],
    typer.Option("--store", help="Your descriptor store (default: $PROMPTKIT_STORE, else $XDG_DATA_HOME/promptkit or ~/.local/share/promptkit); the shipped sets are read too, never written."),
]
ClassSetOpt = Annotated[
    Optional[str], typer.Option("--class-set", help="Class set for a bare version such as 'v2'.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
KindOpt = Annotated[
    Optional[str],
    typer.Option("--kind", help="descriptions | clip-texts: which set a name means when both kinds have it."),
]


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _store(store: Optional[Path]):
    return Store(resolve_store_root(store))


def _echo_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def generate(
    classes: Annotated[str, typer.Option("--classes", help="dfew | ferv39k | mafw | 'a,b,c' | a file, one class per line.")],
    name: Annotated[Optional[str], typer.Option("--name", help="Class-set name for your own classes (default: custom, or the file's stem).")] = None,
    template: Annotated[Optional[list[str]], typer.Option("--template", help="Query template: a shipped name (llm_query, llm_short_list) or a .j2 file; repeat it to ask several questions.")] = None,
    model: Annotated[str, typer.Option("--model", help="Model name at the endpoint.")] = "gpt-4o-mini",
    base_url: Annotated[Optional[str], typer.Option("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else OpenAI).")] = None,
    samples: Annotated[int, typer.Option("--samples", help="Answers per class (and per --template), merged by frequency.")] = 1,
    negatives: Annotated[bool, typer.Option("--negatives", help="Also ask what each expression does not show: a negative description per class.")] = False,
    negative_template: Annotated[Optional[str], typer.Option("--negative-template", help="The negative question (with --negatives): a shipped name or a .j2 file (default llm_negative).")] = None,
    variants: Annotated[bool, typer.Option("--variants", help="Keep every answer as its own description (a variant) besides the merged one; needs --samples 2+.")] = False,
    temperature: Annotated[float, typer.Option("--temperature")] = 0.7,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Sampling seed (sample i uses seed+i).")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", help="Longest answer, in LLM tokens.")] = 400,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Requests in flight at once.")] = 16,
    retries: Annotated[int, typer.Option("--retries", help="Retries on 429, 5xx, timeouts (exponential backoff).")] = 3,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request before it is retried.")] = 60.0,
    contexts: Annotated[int, typer.Option("--contexts", help="Learned context tokens M; budget = 77 - 2 - M.")] = DEFAULT_N_CTX,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ask an LLM what each class looks like and store the descriptions as a new version."""
    llm = LLMConfig(model=model, base_url=base_url, temperature=temperature, seed=seed, max_tokens=max_tokens,
                    concurrency=concurrency, retries=retries, timeout=timeout)
    config = GenerateConfig(classes=classes, name=name, template=tuple(template or (DEFAULT_QUERY_TEMPLATE,)),
                            samples=samples, n_ctx=contexts, llm=llm, negatives=negatives,
                            negative_template=negative_template, variants=variants)
    result = generate_set(config, _store(store))
    for note in result.provenance.get("screened", []):  # what the answer checks dropped, on stderr
        typer.echo(f"note: {note}", err=True)
    if as_json:
        _echo_json(result.to_dict())
        return
    console = _console()
    console.print(cli_render.set_table(result))
    _print_variants(console, result)
    dropped = sum(len(entry.dropped) for entry in result.classes)
    console.print(f"wrote {result.set_id} to {result.path}" + (f" ({dropped} descriptor(s) dropped to fit)" if dropped else ""))


def list_sets(
    class_set: Annotated[Optional[str], typer.Argument(help="Only this class set (or clip-text set).")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List your stored and the shipped descriptor sets and your clip-text sets, and where each lives."""
    the_store = _store(store)
    rows = the_store.list_sets(class_set)
    texts = [row for row in ClipTextStore(the_store.root).list() if class_set in (None, row.name)]
    if as_json:
        _echo_json([{**row.__dict__, "kind": "descriptions", "path": str(row.path),
                     "where": "shipped" if row.shipped else str(the_store.root)} for row in rows]
                   + [{**row.__dict__, "kind": "clip-texts", "path": str(row.path), "where": str(the_store.root)}
                      for row in texts])
        return
    if not rows and not texts:
        typer.echo(f"no descriptor sets yet in {the_store.root}: run `promptkit generate --classes mafw`")
        return
    console = _console()
    if rows:
        console.print(cli_render.list_table(rows))
    if texts:
        console.print(cli_render.clip_text_list_table(texts))
    typer.echo(f"user store: {the_store.root}\nshipped (read-only): {the_store.shipped_root}")


def show(
    ref: Annotated[str, typer.Argument(help="mafw/v2, v2 (with --class-set), mafw (latest), or a .json path.")],
    class_set: ClassSetOpt = None,
    kind: KindOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one descriptor set (descriptions in label order, provenance) or clip-text set."""
    the_store = _store(store)
    if class_set is None and set_kind(ref, the_store, ClipTextStore(the_store.root), kind) == "clip-texts":
        cts = ClipTextStore(the_store.root).load(ref)
        if as_json:
            _echo_json(cts.to_dict())
            return
        console = _console()
        for line in cli_render.clip_text_lines(cts):
            console.print(line, soft_wrap=True)
        console.print(cli_render.clip_text_table(cts))
        return
    ds = the_store.load(ref, class_set)
    if as_json:
        _echo_json(ds.to_dict())
        return
    console = _console()
    for line in cli_render.provenance_lines(ds):
        console.print(line)
    console.print(cli_render.set_table(ds))
    _print_variants(console, ds)


def _print_variants(console: Console, ds: DescriptorSet) -> None:
    table = cli_render.variants_table(ds)
    if table is not None:
        console.print(table)


def diff(
    a: Annotated[str, typer.Argument(help="First set, e.g. mafw/v1.")],
    b: Annotated[str, typer.Argument(help="Second set, e.g. mafw/v2 or v2.")],
    class_set: ClassSetOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per-class changes between two descriptor sets."""
    the_store = _store(store)
    left = the_store.load(a, class_set)
    # A bare `v2` means A's class set; a full ref or a file may name another (dfew/v1 vs ferv39k/v1).
    right = the_store.load(b, class_set) if class_set else the_store.resolve(b, left.class_set)
    changes = diff_sets(left, right)
    if as_json:
        _echo_json([{**c.__dict__, "changed": c.changed} for c in changes])
        return
    if not any(change.changed for change in changes):
        typer.echo(f"{left.set_id} and {right.set_id} have the same descriptors and descriptions")
        return
    _console().print(cli_render.diff_table(left.set_id, right.set_id, changes))


def tokens(
    ref: Annotated[str, typer.Argument(help="Set to check, e.g. mafw/v1.")],
    contexts: Annotated[int, typer.Option("--contexts", help="Learned context tokens M.")] = DEFAULT_N_CTX,
    class_set: ClassSetOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per-class token use against the budget 77 - 2 - M (and what would be dropped to fit)."""
    ds = _store(store).load(ref, class_set)
    rows = token_report(ds.classes, contexts)
    if as_json:
        _echo_json([{**row.__dict__, "fits": row.fits} for row in rows])
        return
    _console().print(cli_render.tokens_table(ds.set_id, rows, contexts))


def add(
    path: Annotated[Path, typer.Argument(help="A hand-edited set JSON (e.g. from `promptkit show mafw/v1 --json`).")],
    class_set: ClassSetOpt = None,
    contexts: Annotated[Optional[int], typer.Option("--contexts", help="Budget context M (default: the file's, else 8).")] = None,
    store: StoreOpt = None,
) -> None:
    """Validate a hand-edited set and store it as a new version (provenance: hand-edited)."""
    if path.suffix.lower() != ".json":
        raise ExchangeError(f"`promptkit add` takes a .json file, got {path}; use `promptkit import` for CSV or datasets")
    result = import_set(path, _store(store), class_set=class_set, n_ctx=contexts, source="hand-edited")
    typer.echo(f"wrote {result.set_id} to {result.path}")


def export(
    ref: Annotated[str, typer.Argument(help="Set to export, e.g. mafw/v1.")],
    out: Annotated[Path, typer.Argument(help="Output: a .csv file or a dataset folder (must not exist).")],
    fmt: Annotated[str, typer.Option("--format", help="csv | hf (Hugging Face datasets save_to_disk).")] = "csv",
    class_set: ClassSetOpt = None,
    kind: KindOpt = None,
    store: StoreOpt = None,
) -> None:
    """Export a descriptor set or a clip-text set (clip_id,text,missing_reason) as CSV or as a Hugging Face dataset folder."""
    if fmt not in ("csv", "hf"):
        raise ExchangeError(f"unknown --format {fmt!r}: use csv or hf")
    the_store = _store(store)
    if class_set is None and set_kind(ref, the_store, ClipTextStore(the_store.root), kind) == "clip-texts":
        found = ClipTextStore(the_store.root).load(ref)
        written = (export_clip_texts_csv if fmt == "csv" else export_clip_texts_hf)(found, out)
    else:
        found = the_store.load(ref, class_set)
        written = (export_csv if fmt == "csv" else export_hf)(found, out)
    typer.echo(f"exported {found.set_id} to {written}")


def import_(
    path: Annotated[Path, typer.Argument(help="A .csv file, a saved dataset folder, or a set .json.")],
    class_set: ClassSetOpt = None,
    contexts: Annotated[Optional[int], typer.Option("--contexts", help="Budget context M (default: the file's, else 8).")] = None,
    store: StoreOpt = None,
) -> None:
    """Import a set (CSV, Hugging Face dataset, JSON) as a new validated version."""
    result = import_set(path, _store(store), class_set=class_set, n_ctx=contexts)
    typer.echo(f"wrote {result.set_id} to {result.path}")


def register(app: typer.Typer) -> None:
    """Add the descriptor-set commands to the root `promptkit` app."""
    app.command("generate")(generate)
    app.command("list")(list_sets)
    app.command("show")(show)
    app.command("diff")(diff)
    app.command("tokens")(tokens)
    app.command("add")(add)
    app.command("export")(export)
    app.command("import")(import_)


__all__ = ["register"]
