"""Rich tables for the descriptor-set commands (pure builders: they return renderables, never print)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from promptkit.cliptexts import ClipTextSet, ClipTextSummary
from promptkit.diff import ClassChange
from promptkit.sets import DescriptorSet
from promptkit.store import SetSummary
from promptkit.tokens import TokenRow, budget, count_tokens


def set_table(ds: DescriptorSet, title: str | None = None) -> Table:
    """One row per class; a "negative" column (tokens and description) only when the set has negatives."""
    negatives = any(entry.negative is not None for entry in ds.classes)
    table = Table(title=title or f"{ds.set_id}  ({ds.content_hash[:19]}...)", show_lines=False)
    table.add_column("label", justify="right")
    table.add_column("class")
    table.add_column("tokens", justify="right")
    table.add_column("description", overflow="fold")
    table.add_column("dropped", overflow="fold", style="yellow")
    if negatives:
        table.add_column("negative (not shown)", overflow="fold", style="magenta")
    for index, entry in enumerate(ds.classes):
        row = [str(index), entry.name, f"{entry.tokens}/{budget(ds.n_ctx)}", entry.description,
               "; ".join(entry.dropped) or "-"]
        if negatives:
            neg = entry.negative
            row.append(f"{neg.description} ({neg.tokens}/{budget(ds.n_ctx)})" if neg is not None else "-")
        table.add_row(*row)
    return table


def variants_table(ds: DescriptorSet) -> Table | None:
    """Every class's variants (one row each, with its tokens); None when the set has none."""
    if not any(entry.variants for entry in ds.classes):
        return None
    table = Table(title=f"{ds.set_id}: variants")
    table.add_column("label", justify="right")
    table.add_column("class")
    table.add_column("#", justify="right")
    table.add_column("tokens", justify="right")
    table.add_column("variant", overflow="fold")
    for index, entry in enumerate(ds.classes):
        for number, variant in enumerate(entry.variants, start=1):
            table.add_row(str(index), entry.name, str(number), f"{count_tokens(variant)}/{budget(ds.n_ctx)}", variant)
    return table


def provenance_lines(ds: DescriptorSet) -> list[str]:
    prov = ds.provenance
    lines = [f"set {ds.set_id}{'  (shipped)' if ds.shipped else ''}  file {ds.path}",
             f"contexts {ds.n_ctx} (budget {budget(ds.n_ctx)} tokens)  hash {ds.content_hash}"]
    keys = ("source", "model", "endpoint_host", "template", "template_sha256", "templates", "negative_template",
            "sampling", "parent", "created")
    details = [f"{key}={prov[key]}" for key in keys if prov.get(key) not in (None, "", {})]
    lines.append("provenance: " + ", ".join(details))
    return lines


def list_table(rows: list[SetSummary]) -> Table:
    """One row per set; "where" says shipped (read-only) or the user store's folder."""
    table = Table(title="descriptor sets")
    for column in ("set", "classes", "source", "model", "created", "where"):
        table.add_column(column, overflow="fold")
    for row in rows:
        where = "shipped" if row.shipped else "user store"  # the folders are printed below the table
        if row.problem:
            table.add_row(row.set_id, "-", Text("CORRUPT", style="bold red"), "-", "-", Text(row.problem, style="red"))
            continue
        created = row.created[:16].replace("T", " ") if row.created else "-"  # minutes are enough to tell sets apart
        table.add_row(row.set_id, str(row.n_classes), row.source, row.model or "-", created, where)
    return table


def tokens_table(set_id: str, rows: list[TokenRow], n_ctx: int) -> Table:
    table = Table(title=f"{set_id} at --contexts {n_ctx}")
    table.add_column("class")
    table.add_column("tokens", justify="right")
    table.add_column("budget", justify="right")
    table.add_column("status")
    table.add_column("dropped (stored)", overflow="fold")
    table.add_column("would drop at this budget", overflow="fold")
    for row in rows:
        if row.fits:
            status = Text("ok", style="green")
        else:
            status = Text(f"over by {row.tokens - row.budget}", style="bold red")
        would = "; ".join(row.would_drop) if row.refit_possible else "(edit the description by hand)"
        table.add_row(row.name, str(row.tokens), str(row.budget), status, "; ".join(row.dropped) or "-",
                      would if not row.fits else "-")
    return table


def diff_table(a: str, b: str, changes: list[ClassChange]) -> Table:
    """Changed classes only; a "negative / variants" column only when one of those changed."""
    extras = any(change.extras_changed for change in changes)
    table = Table(title=f"{a} -> {b}")
    for column in ("label", "class", "added", "removed", "tokens", "description") + (("negative / variants",) if extras else ()):
        table.add_column(column, overflow="fold")
    for change in changes:
        if not change.changed:
            continue
        name = change.name_a if not change.renamed else f"{change.name_a} -> {change.name_b}"
        described = "changed" if change.description_a != change.description_b else "same"
        row = [str(change.label), str(name), Text("; ".join(change.added), style="green"),
               Text("; ".join(change.removed), style="red"), f"{change.tokens_a} -> {change.tokens_b}", described]
        if extras:
            row.append(_extras_change(change))
        table.add_row(*row)
    return table


def _extras_change(change: ClassChange) -> str:
    parts = []
    if change.negative_a != change.negative_b:
        if change.negative_a is None or change.negative_b is None:
            parts.append("negative " + ("added" if change.negative_a is None else "removed"))
        else:
            parts.append("negative changed")
    if change.variants_a != change.variants_b:
        count_a, count_b = len(change.variants_a), len(change.variants_b)
        parts.append(f"variants {count_a} -> {count_b}" if count_a != count_b else "variants changed")
    return "; ".join(parts) or "same"


def clip_text_list_table(rows: list[ClipTextSummary]) -> Table:
    """One row per clip-text set (all in the user store)."""
    table = Table(title="clip-text sets (in the user store)")
    table.add_column("set", no_wrap=True)
    table.add_column("clips", justify="right")
    table.add_column("missing", justify="right")
    table.add_column("model", overflow="fold")  # or the source of a set no model wrote
    table.add_column("created", no_wrap=True)
    for row in rows:
        if row.problem:
            table.add_row(row.set_id, "-", "-", Text(f"CORRUPT: {row.problem}", style="bold red"), "-")
            continue
        created = row.created[:10] or "-"  # the day: `show` has the whole time
        table.add_row(row.set_id, str(row.n_clips), str(row.n_missing), row.model or row.source or "-", created)
    return table


def clip_text_lines(cts: ClipTextSet) -> list[str]:
    """The heading of `promptkit show` for a clip-text set: file, counts, hash, provenance."""
    prov = cts.provenance
    keys = ("source", "model", "endpoint_host", "template", "template_sha256", "frames", "image_size", "lists",
            "usage", "missing", "created")
    details = [f"  {key}: {prov[key]}" for key in keys if prov.get(key) not in (None, "", {}, [])]
    return [f"clip-text set {cts.set_id}  file {cts.path}",
            f"{len(cts.texts) + len(cts.missing)} clips, {len(cts.texts)} texts, {len(cts.missing)} missing",
            f"hash {cts.content_hash}", "provenance:", *details]


def clip_text_table(cts: ClipTextSet) -> Table:
    """One row per clip, sorted by id: its text, or why it has none."""
    table = Table(title=cts.set_id)
    table.add_column("clip")
    table.add_column("text", overflow="fold")
    rows = [(cid, Text(text)) for cid, text in cts.texts.items()]
    rows += [(cid, Text(f"(missing: {reason})", style="yellow")) for cid, reason in cts.missing.items()]
    for cid, text in sorted(rows, key=lambda row: row[0]):
        table.add_row(cid, text)
    return table

