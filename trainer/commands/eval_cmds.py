"""The `promptkit` commands that need a model: compare (prompt variants on one test split), embed
(text embeddings of a descriptor set), interpret (nearest tokens of learned contexts).

They are promptkit commands, registered into promptkit's app through the `promptkit.commands` entry
point (`register`, named in pyproject.toml), so promptkit itself never imports trainer. Thin Typer
commands: parse, call one `trainer.evaluate` function, render with rich. The library modules (torch,
open_clip) are imported only when a command runs, so `promptkit list` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from trainer.commands.run_view import make_progress
from trainer.commands.switches import SWITCHES, with_switches

COMPARE_HELP = """Evaluate prompt variants on one test split and print one table (UAR, WAR, per-class
recall): manual templates zero-shot with the backbone, trained runs (--run DIR), and with --train
the learned-context variants (context + class names, context + descriptions) trained with one budget.
With no data options it uses the embedded synthetic set and the tiny backbone. Writes compare.csv,
compare.json and compare.png into --out."""

Opt = typer.Option


def _stdout() -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:  # pipes and logs: room for the per-class columns
        console = Console(highlight=False, width=200)
    return console


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


@with_switches("compare")
def compare(
    template: Annotated[list[str], Opt("--template", help="Template (repeatable): photo_of, expression_of, class_name, description, random_words, negatives, multi_descriptions, or a .j2 file.")] = [],  # noqa: B006
    no_zero_shot: Annotated[bool, Opt("--no-zero-shot", help="Skip the manual-template variants.")] = False,
    run: Annotated[list[Path], Opt("--run", help="A trainer run folder (or checkpoint) to score too (repeatable).")] = [],  # noqa: B006
    train: Annotated[bool, Opt("--train", help="Train context+classnames and context+descriptions with the same budget, then score them.")] = False,
    out: Annotated[Path, Opt("--out", help="Folder for compare.csv/.json/.png (and runs/ with --train).")] = Path("compare"),
    preset: Annotated[Optional[str], Opt("--preset", help="default | dfew | ferv39k | mafw (default: the dataset's, else default).")] = None,
    config_file: Annotated[Optional[str], Opt("--config", help="JSON run config (e.g. a run's config.json).")] = None,
    sets: Annotated[list[str], Opt("--set", help="Override any run config field: key=value (dotted).")] = [],  # noqa: B006
    switches: dict[str, Any] = SWITCHES,  # the run switches declared for compare (data, backbone, budget)
    zs_normalize: Annotated[str, Opt("--zs-normalize", help="Pixel normalisation of the zero-shot variants: clip (CLIP's mean/std) | none.")] = "clip",
    eval_batch: Annotated[int, Opt("--eval-batch", help="Clips per evaluation batch.")] = 16,
    base_weights: Annotated[Optional[str], Opt("--base-weights", help="Where the base weights of --run PEFT delta checkpoints are, when not at the ref they record (sha256 checked).")] = None,
    quiet: Annotated[bool, Opt("--quiet", help="One line per epoch while training, no bars.")] = False,
) -> None:
    from trainer.evaluate.compare import DEFAULT_TEMPLATES, CompareConfig, resolve_run_config, run_compare
    from trainer.options import cli_options

    options = cli_options(**switches)
    run_config = resolve_run_config(preset, config_file, options, sets, train)
    templates = () if no_zero_shot else tuple(template or DEFAULT_TEMPLATES)
    cfg = CompareConfig(run_config, templates, tuple(run), train, out, zs_normalize, eval_batch, base_weights)
    result = _with_progress(lambda progress: run_compare(cfg, progress), quiet)
    for note in result.notes:
        _stderr().print(f"note: {note}")
    _stdout().print(f"test list: {result.test_list}", soft_wrap=True)
    _stdout().print(compare_table(result, _stdout().width))
    _stdout().print(f"wrote {result.files['csv']}, {Path(result.files['png']).name} and "
                    f"{Path(result.files['json']).name}")


def _with_progress(call, quiet: bool):
    with make_progress(_stderr(), quiet) as progress:
        return call(progress)


def compare_table(result, width: int = 200) -> Table:
    """Variants x (UAR, WAR and, where `width` has room for them, each class's recall: they are in
    the CSV and JSON either way)."""
    widest = max((len(row.variant) for row in result.rows), default=8)
    per_class = widest + 40 + sum(max(len(c), 5) + 3 for c in result.classes) <= width
    table = Table(title=f"{result.class_set}: {result.n_clips} test clips",
                  caption=None if per_class else "per-class recall: in the CSV")
    for name in ("variant", "kind", "UAR %", "WAR %", *(result.classes if per_class else ())):
        table.add_column(name, justify="left" if name in ("variant", "kind") else "right", no_wrap=name != "variant")
    for row in result.rows:
        recalls = ["-" if row.recall[c] is None else f"{row.recall[c]:.1f}" for c in result.classes] if per_class else []
        table.add_row(row.variant, row.kind, f"{row.uar:.2f}", f"{row.war:.2f}", *recalls)
    return table


def embed(
    ref: Annotated[str, typer.Argument(help="Descriptor set: mafw/v1, v1 (with --class-set), or a .json path.")],
    backbone: Annotated[str, Opt("--backbone", help="open_clip model name, or tiny (random, for tests).")] = "ViT-B-32",
    pretrained: Annotated[Optional[str], Opt("--pretrained", help="Backbone weights file or folder (offline).")] = None,
    quick_gelu: Annotated[bool, Opt("--quick-gelu/--no-quick-gelu", help="QuickGELU (OpenAI weights use it).")] = True,
    descriptors: Annotated[bool, Opt("--descriptors", help="Also embed every single descriptor.")] = False,
    fmt: Annotated[str, Opt("--format", help="npy | pt | parquet.")] = "npy",
    top_k: Annotated[int, Opt("--top-k", help="How many closest class pairs to name.")] = 5,
    out: Annotated[Optional[Path], Opt("--out", help="Output folder (default embeddings/<class set>-vN).")] = None,
    class_set: Annotated[Optional[str], Opt("--class-set", help="Class set for a bare version such as v1.")] = None,
    store: Annotated[Optional[str], Opt("--store", help="Your descriptor store (default $PROMPTKIT_STORE, else ~/.local/share/promptkit); shipped sets are read too.")] = None,
    seed: Annotated[int, Opt("--seed", help="Seed of a random (weightless) backbone.")] = 0,
    random_weights: Annotated[bool, Opt("--random-weights", help="Allow a backbone without --pretrained (seeded random weights: the similarities mean nothing).")] = False,
) -> None:
    """CLIP text embeddings of every class description (and descriptor), a similarity heatmap and the
    closest (most confusable) class pairs."""
    from trainer.evaluate.embed import EmbedConfig, embed_set, save_embeddings

    cfg = EmbedConfig(ref, backbone, pretrained, quick_gelu, store, class_set, descriptors, fmt, top_k, seed,
                      random_weights=random_weights)
    if pretrained is None and random_weights:
        _stderr().print(f"note: --random-weights: {backbone} has random weights, the similarities mean nothing")
    result = embed_set(cfg)
    folder = out or Path("embeddings") / result.set_id.replace("/", "-")
    files = save_embeddings(result, folder, fmt)
    table = Table(title=f"closest class descriptions in {result.set_id} ({backbone})")
    for name in ("rank", "class", "class", "cosine"):
        table.add_column(name, justify="right" if name in ("rank", "cosine") else "left")
    for pair in result.pairs:
        table.add_row(str(pair["rank"]), pair["a"], pair["b"], f"{pair['cosine']:.3f}")
    _stdout().print(table)
    shape = "x".join(str(n) for n in result.embeddings.shape)
    _stdout().print(f"wrote {shape} embeddings to {files['embeddings']}; index, heatmap and pairs in {folder}")


def interpret(
    path: Annotated[Path, typer.Argument(help="A trainer run folder or a checkpoint file.")],
    top_k: Annotated[int, Opt("--top-k", help="Nearest tokens per context position.")] = 5,
    metric: Annotated[str, Opt("--metric", help="cosine | l2.")] = "cosine",
    pretrained: Annotated[Optional[str], Opt("--pretrained", help="Backbone weights with the token-embedding table (default: the run's own); also a moved PEFT delta's base.")] = None,
    out: Annotated[Optional[Path], Opt("--out", help="FILE.json, FILE.csv or a folder (default: beside the checkpoint).")] = None,
    as_json: Annotated[bool, Opt("--json", help="Print JSON instead of tables.")] = False,
    full_vocab: Annotated[bool, Opt("--full-vocab", help="Search CLIP's whole vocabulary even for tinyface (default there: the world's caption words).")] = False,
) -> None:
    """The vocabulary tokens nearest to each learned context vector, per class: what the context 'says'."""
    from trainer.evaluate.interpret import interpret as interpret_checkpoint
    from trainer.evaluate.interpret import save_interpretation

    result = interpret_checkpoint(path, top_k, metric, pretrained, full_vocab)
    written = save_interpretation(result, out)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    console = _stdout()
    console.print(f"{result.checkpoint}: {result.metric}, vocabulary {result.vocabulary}")
    for ctx in result.contexts:
        table = Table(title=f"{ctx['class']}: reads as {ctx['reading']!r}")
        table.add_column("pos", justify="right")
        for rank in range(result.top_k):
            table.add_column(f"#{rank + 1}")
        for pos, tokens in enumerate(ctx["positions"]):
            table.add_row(str(pos + 1), *(f"{t['token']} ({t['score']:.2f})" for t in tokens))
        console.print(table)
    console.print(f"wrote {', '.join(str(p) for p in written)}")


def register(app: typer.Typer) -> None:
    """Add compare, embed and interpret to the root `promptkit` app (the `promptkit.commands` entry point)."""
    app.command("compare", help=COMPARE_HELP,
                short_help="Prompt variants on one test split: manual templates vs learned contexts.")(compare)
    app.command("embed", short_help="Text embeddings of a descriptor set and its closest class pairs.")(embed)
    app.command("interpret")(interpret)


__all__ = ["register"]
