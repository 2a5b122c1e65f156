"""Export a descriptor set as CSV or a Hugging Face dataset; import either (or hand-edited JSON).

A set with negative descriptions or variants (format 2) gets extra columns: in CSV `negative` (the
description), `negative_descriptors` and `variants` (lists joined with ' | '; a `|` or `\\` inside an
item is written `\\|` / `\\\\`, so every list reads back item for item); in the dataset a `negative`
struct and a `variants` list. Sets without them export exactly as before, and files without those
columns import as before. CSV files are read as UTF-8 with or without a byte-order mark (Excel's).

Imports are validated like any new version (class names and order, the token budget) and stored
as a new version with provenance that names where they came from.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from promptkit.cliptexts import ClipTextSet
from promptkit.errors import ExchangeError
from promptkit.fileio import make_folder, write_atomic
from promptkit.sets import ClassEntry, DescriptorSet, NegativeEntry, toolkit_version
from promptkit.store import Store
from promptkit.tokens import DEFAULT_N_CTX, count_tokens, join_descriptors

CSV_COLUMNS = ("label", "name", "description", "tokens", "descriptors", "dropped", "class_set", "version", "content_hash")
CSV_NEGATIVE_COLUMNS = ("negative", "negative_descriptors")
CSV_VARIANT_COLUMNS = ("variants",)
LIST_SEP = " | "
CLIP_TEXT_COLUMNS = ("clip_id", "text", "missing_reason")


def set_rows(ds: DescriptorSet) -> list[dict]:
    """One row per class, in label order (lists kept as lists); "negative" (a dict) and "variants"
    only when the set has them."""
    negatives = any(entry.negative is not None for entry in ds.classes)
    variants = any(entry.variants for entry in ds.classes)
    rows = []
    for index, entry in enumerate(ds.classes):
        row: dict = {
            "label": index,
            "name": entry.name,
            "description": entry.description,
            "tokens": entry.tokens,
            "descriptors": list(entry.descriptors),
            "dropped": list(entry.dropped),
            "raw_answers": list(entry.raw_answers),
        }
        if negatives:
            row["negative"] = entry.negative.to_dict() if entry.negative is not None else None
        if variants:
            row["variants"] = list(entry.variants)
        rows.append(row)
    return rows


def _meta(ds: DescriptorSet) -> dict:
    return {"set_id": ds.set_id, "class_set": ds.class_set, "version": ds.version, "n_ctx": ds.n_ctx,
            "content_hash": ds.content_hash, "provenance": ds.provenance}


def export_csv(ds: DescriptorSet, out: Path) -> Path:
    """Write the set as CSV (lists joined with ' | '); atomic; refuses to overwrite."""
    out = Path(out)
    _refuse_existing(out)
    rows = set_rows(ds)
    columns = list(CSV_COLUMNS)
    if "negative" in rows[0]:
        columns += CSV_NEGATIVE_COLUMNS
    if "variants" in rows[0]:
        columns += CSV_VARIANT_COLUMNS
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        row = {**row, "descriptors": join_list(row["descriptors"]), "dropped": join_list(row["dropped"]),
               "class_set": ds.class_set, "version": ds.version, "content_hash": ds.content_hash}
        row.pop("raw_answers")
        negative = row.pop("negative", None)
        if "negative" in columns:
            row["negative"] = negative["description"] if negative else ""
            row["negative_descriptors"] = join_list(negative["descriptors"]) if negative else ""
        if "variants" in row:
            row["variants"] = join_list(row["variants"])
        writer.writerow(row)
    _atomic_write(out, buffer.getvalue())
    return out


def export_hf(ds: DescriptorSet, out: Path) -> Path:
    """Save the set with `datasets.Dataset.save_to_disk`; set metadata goes in the info description."""
    return _save_hf(set_rows(ds), _meta(ds), Path(out))


def _save_hf(rows: list[dict], meta: dict, out: Path) -> Path:
    """Save `rows` (one dict each, the same keys) as a dataset folder at `out`, staged beside it and
    moved into place; `meta` goes in the info description. Refuses an existing `out`."""
    import datasets

    _refuse_existing(out)
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    info = datasets.DatasetInfo(description=json.dumps(meta, ensure_ascii=False))
    dataset = datasets.Dataset.from_dict(columns, info=info)
    try:
        make_folder(out.parent)
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent))
    except OSError as exc:
        raise ExchangeError(f"cannot write to {out.parent}: {exc.strerror or exc}") from exc
    try:
        with _quiet_datasets(datasets):
            dataset.save_to_disk(str(staging / "data"))
        os.replace(staging / "data", out)
    except OSError as exc:
        raise ExchangeError(f"cannot write dataset to {out}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def clip_text_rows(cts: ClipTextSet) -> list[dict]:
    """One row per clip, sorted by clip id: its text, or "" and the reason it has none."""
    rows = [{"clip_id": cid, "text": text, "missing_reason": ""} for cid, text in cts.texts.items()]
    rows += [{"clip_id": cid, "text": "", "missing_reason": reason} for cid, reason in cts.missing.items()]
    return sorted(rows, key=lambda row: row["clip_id"])


def export_clip_texts_csv(cts: ClipTextSet, out: Path) -> Path:
    """Write a clip-text set as CSV (clip_id,text,missing_reason); atomic; refuses to overwrite."""
    out = Path(out)
    _refuse_existing(out)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CLIP_TEXT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(clip_text_rows(cts))
    _atomic_write(out, buffer.getvalue())
    return out


def export_clip_texts_hf(cts: ClipTextSet, out: Path) -> Path:
    """Save a clip-text set as a Hugging Face dataset folder (the set's metadata in the info description)."""
    meta = {"set_id": cts.set_id, "name": cts.name, "version": cts.version, "content_hash": cts.content_hash,
            "provenance": cts.provenance}
    return _save_hf(clip_text_rows(cts), meta, Path(out))


def import_set(
    path: Path, store: Store, class_set: str | None = None, n_ctx: int | None = None, source: str | None = None
) -> DescriptorSet:
    """Read a CSV file, a saved HF dataset folder, or a (hand-edited) set JSON and store it as a new version."""
    path = Path(path)
    if path.is_dir():
        rows, meta, kind = _read_hf(path)
    elif path.suffix.lower() == ".csv":
        rows, meta, kind = _read_csv(path)
    elif path.suffix.lower() == ".json":
        rows, meta, kind = _read_json(path)
    elif not path.exists():
        raise ExchangeError(f"no such file or folder: {path}")
    else:
        raise ExchangeError(f"cannot import {path}: expected a .csv file, a .json file, or a saved dataset folder")
    target = class_set or meta.get("class_set")
    if not target:
        raise ExchangeError(f"{path} does not say its class set: pass --class-set")
    n_ctx = n_ctx if n_ctx is not None else meta.get("n_ctx", DEFAULT_N_CTX)
    if isinstance(n_ctx, bool) or not isinstance(n_ctx, int):
        raise ExchangeError(f"{path}: n_ctx must be a whole number of context tokens, got {n_ctx!r}; fix it or pass --contexts")
    entries = [_entry(row, f"{path}: row {i}") for i, row in enumerate(rows)]
    provenance = {
        "source": source or ("hand-edited" if kind == "json" else "imported"),
        "imported_from": kind,
        "file": path.name,
        "parent": meta.get("set_id"),
        "parent_content_hash": meta.get("content_hash"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "promptkit_version": toolkit_version(),
    }
    parent_prov = meta.get("provenance")
    if isinstance(parent_prov, dict):
        provenance["parent_source"] = parent_prov.get("source")
    return store.add(target, entries, provenance, n_ctx)


def _entry(row: dict, where: str) -> ClassEntry:
    name = row.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ExchangeError(f"{where}: missing class name")
    descriptors, description = _described(row, f"{where} (class {name!r})", "")
    return ClassEntry(
        name=name.strip(),
        descriptors=descriptors,
        description=description,
        tokens=count_tokens(description),
        raw_answers=_as_list(row.get("raw_answers"), f"{where}: raw_answers"),
        dropped=_as_list(row.get("dropped"), f"{where}: dropped"),
        negative=_negative(row, f"{where} (class {name.strip()!r})"),
        variants=[" ".join(v.split()) for v in _as_list(row.get("variants"), f"{where}: variants")],
    )


def _described(value: dict, where: str, what: str) -> tuple[list[str], str]:
    """(descriptors, description) of a class row or its negative (`what` "negative "): the description
    with its whitespace tidied, else the descriptors joined; an ExchangeError when there is neither."""
    descriptors = _as_list(value.get("descriptors"), f"{where}: {what}descriptors")
    description = value.get("description") or ""
    if not isinstance(description, str):
        raise ExchangeError(f"{where}: the {what}description must be text, got {description!r:.40}")
    description = " ".join(description.split()) or join_descriptors(descriptors)
    if not description:
        raise ExchangeError(f"{where}: give a {what}description or {what}descriptors")
    return descriptors, description


def _negative(row: dict, where: str) -> NegativeEntry | None:
    """A row's negative description: absent/empty -> None; text (JSON, or CSV with its optional
    `negative_descriptors` column); or an object with description / descriptors (/ dropped, raw_answers)."""
    value = row.get("negative")
    if isinstance(value, str):
        value = {"description": value, "descriptors": row.get("negative_descriptors")}
    elif value is not None and not isinstance(value, dict):
        raise ExchangeError(f"{where}: negative must be a description (text) or an object, got {value!r:.40}")
    if value is None or not (value.get("description") or value.get("descriptors")):
        return None
    descriptors, description = _described(value, where, "negative ")
    return NegativeEntry(
        descriptors=descriptors,
        description=description,
        tokens=count_tokens(description),
        raw_answers=_as_list(value.get("raw_answers"), f"{where}: negative raw_answers"),
        dropped=_as_list(value.get("dropped"), f"{where}: negative dropped"),
    )


def join_list(items: list[str]) -> str:
    """A CSV cell of a list: items joined with ' | ', each `\\` and `|` inside an item escaped with `\\`."""
    return LIST_SEP.join(item.replace("\\", "\\\\").replace("|", "\\|") for item in items)


def split_list(cell: str) -> list[str]:
    """The items of a `join_list` cell (also of a hand-written 'a | b' or 'a|b'); a backslash keeps the
    next `|` or `\\` literal and is otherwise kept as it is."""
    items, current, chars = [], [], iter(cell)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            current.append(following if following in ("|", "\\") else char + following)
        elif char == "|":
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def _as_list(value: object, where: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return split_list(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise ExchangeError(f"{where} must be a list of strings")


def _read_csv(path: Path) -> tuple[list[dict], dict, str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: Excel's byte-order mark
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ExchangeError(f"cannot read CSV {path}: {exc}") from exc
    if not rows or "name" not in rows[0]:
        raise ExchangeError(f"{path} needs a header with at least 'name' and 'description' columns and one row per class")
    rows = _label_order(rows, path)
    first = rows[0]
    meta = {"class_set": first.get("class_set") or None, "content_hash": first.get("content_hash") or None}
    if first.get("class_set") and first.get("version"):
        meta["set_id"] = f"{first['class_set']}/v{first['version']}"
    return rows, meta, "csv"


def _read_hf(path: Path) -> tuple[list[dict], dict, str]:
    import datasets

    try:
        dataset = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises many kinds (FileNotFoundError, ValueError, ...)
        raise ExchangeError(f"{path} is not a saved Hugging Face dataset: {exc}") from exc
    if not isinstance(dataset, datasets.Dataset):
        raise ExchangeError(f"{path} holds several splits; save a single Dataset")
    rows = _label_order(dataset.to_list(), path)
    try:
        meta = json.loads(dataset.info.description or "{}")
    except json.JSONDecodeError:
        meta = {}
    return rows, meta if isinstance(meta, dict) else {}, "hf"


def _read_json(path: Path) -> tuple[list[dict], dict, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ExchangeError(f"no such file: {path}") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExchangeError(f"{path} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list):
        raise ExchangeError(f"{path} needs a 'classes' list (the shape `promptkit show SET --json` prints)")
    rows = [row if isinstance(row, dict) else {} for row in data["classes"]]
    meta = {key: data.get(key) for key in ("set_id", "class_set", "n_ctx", "content_hash", "provenance")}
    if not meta.get("set_id") and data.get("class_set") and data.get("version"):
        meta["set_id"] = f"{data['class_set']}/v{data['version']}"
    return rows, {k: v for k, v in meta.items() if v is not None}, "json"


def _label_order(rows: list[dict], path: Path) -> list[dict]:
    if not rows or rows[0].get("label") in (None, ""):
        return rows
    try:
        labels = [int(row["label"]) for row in rows]
    except (TypeError, ValueError, KeyError) as exc:
        raise ExchangeError(f"{path}: the 'label' column must hold integers 0..N-1") from exc
    if sorted(labels) != list(range(len(rows))):
        raise ExchangeError(f"{path}: labels must be 0..{len(rows) - 1} once each, got {labels}")
    return [row for _, row in sorted(zip(labels, rows), key=lambda pair: pair[0])]


def _refuse_existing(out: Path) -> None:
    if out.exists():
        raise ExchangeError(f"{out} already exists: choose a new output path (exports never overwrite)")


def _atomic_write(out: Path, text: str) -> None:
    try:
        write_atomic(out, text)
    except OSError as exc:
        raise ExchangeError(f"cannot write {out}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def _quiet_datasets(datasets_module):
    """Silence the library's progress bars for one call, restoring the user's setting after."""
    was_enabled = datasets_module.is_progress_bar_enabled()
    datasets_module.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets_module.enable_progress_bars()

