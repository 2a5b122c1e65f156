"""What the evaluation commands (compare, embed, interpret) share: their output files, written
atomically with `promptkit.fileio.write_atomic` (a file that cannot be written is one EvalError).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Sequence

from promptkit.fileio import write_atomic

from trainer.errors import EvalError


def write_output(path: Path, content: Any) -> Path:
    """`fileio.write_atomic`, with a file that cannot be written (a file where a folder should be, a
    read-only folder, a full disk) as one EvalError naming it instead of an OSError traceback."""
    try:
        return write_atomic(path, content)
    except OSError as exc:
        raise EvalError(f"cannot write {path}: {exc.strerror or exc}; choose another --out") from exc


def write_json(path: Path, obj: Any) -> Path:
    return write_output(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_output(path, buf.getvalue())


def save_figure(fig: Any, path: Path) -> Path:
    """A matplotlib Figure as PNG, written atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return write_output(path, buf.getvalue())
