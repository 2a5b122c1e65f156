"""What a run leaves in its folder, written atomically by rank 0.

- `config.json`   the resolved RunConfig
- `metrics.jsonl` one JSON line per epoch: train loss, learning rates, clips/s, test (and val)
                  UAR / WAR / per-class recall / confusion matrix; rewritten whole from the run's
                  history each epoch, so a resumed run never duplicates lines
- `confusion.csv`, `confusion.png`  confusion matrix of the selected model on the test set (counts
                  and row-normalised side by side in the PNG)
- `curves.png`    train loss and test (val) UAR / WAR per epoch
- `summary.json`  `uar`, `war` (percent), per-class recall, the selection rule and epoch, classes,
                  the software versions (`software_versions`)
- protocol runs: `protocol.csv` with one row per (fold, seed) and mean / std rows (the fold is
  empty for runs from list files, which have no folds)
- `report.html`   every figure and table of the run on one self-contained page (`trainer.report_html`)
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
from pathlib import Path
from typing import Any, Sequence

from promptkit.fileio import write_atomic

from trainer.errors import ReportError

SELECTION_LABELS = {
    "last": "last epoch",
    "val": "best validation WAR (held out from train)",
    "best-test-war": "best test WAR (authors' rule, optimistic)",
}



def _write(path: str | Path, content: str | bytes) -> Path:
    """`write_atomic`, with an OSError (no space, permission, a folder in the way) as one ReportError line."""
    try:
        return write_atomic(path, content)
    except OSError as exc:
        raise ReportError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_json(path: str | Path, obj: Any) -> Path:
    return _write(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_metrics_jsonl(path: str | Path, history: Sequence[dict[str, Any]]) -> Path:
    return _write(path, "".join(json.dumps(rec) + "\n" for rec in history))


def read_metrics_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def confusion_csv(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> str:
    """Rows are true classes, columns predicted classes."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["true\\pred", *classes])
    for name, row in zip(classes, matrix):
        writer.writerow([name, *[int(v) for v in row]])
    return buf.getvalue()


def write_confusion(run_dir: str | Path, matrix: Sequence[Sequence[int]], classes: Sequence[str],
                    title: str = "confusion matrix (test)") -> None:
    """confusion.csv and confusion.png (raw counts beside the row-normalised matrix)."""
    run_dir = Path(run_dir)
    _write(run_dir / "confusion.csv", confusion_csv(matrix, classes))
    _write(run_dir / "confusion.png", confusion_png(matrix, classes, title))


def row_normalised(matrix: Sequence[Sequence[int | float]]) -> list[list[float]]:
    """Each row divided by its sum (the per-class recall on the diagonal); an empty row stays 0."""
    rows = [[float(v) for v in row] for row in matrix]
    return [[v / sum(row) if sum(row) > 0 else 0.0 for v in row] for row in rows]


def confusion_figure(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str = "confusion matrix (test)"):
    """Two panels: the raw counts (coloured by count) and the row-normalised matrix (coloured and
    labelled in % of the true class)."""
    from matplotlib.figure import Figure

    n = len(classes)
    counts = [[int(v) for v in row] for row in matrix]
    norm = row_normalised(counts)
    fig = Figure(figsize=(2.0 + 1.4 * n, 1.0 + 0.6 * n))
    ax_counts, ax_norm = fig.subplots(1, 2)
    top = max(1, max((v for row in counts for v in row), default=1))
    panels = ((ax_counts, counts, top, "counts", lambda v: str(int(v))),
              (ax_norm, [[100.0 * v for v in row] for row in norm], 100.0, "row-normalised (% of true class)",
               lambda v: f"{v:.0f}"))
    for ax, values, vmax, label, fmt in panels:
        ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax)
        ax.set_xticks(range(n), classes, rotation=45, ha="right")
        ax.set_yticks(range(n), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(label, fontsize=10)
        for i in range(n):
            for j in range(n):
                ax.text(j, i, fmt(values[i][j]), ha="center", va="center",
                        color="white" if values[i][j] > 0.5 * vmax else "black", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_png(matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str = "confusion matrix (test)") -> bytes:
    """`confusion_figure` as PNG bytes."""
    return _figure_png(confusion_figure(matrix, classes, title))


# split -> colour; metric -> (line style, marker, filled, z-order): UAR is drawn above WAR with a
# smaller filled marker and a solid line, WAR dashed with larger hollow markers, so neither hides
# the other when they are equal (a balanced test set, or a model that predicts one class)
_SPLIT_COLOURS = {"test": ("tab:blue", "tab:orange"), "val": ("tab:green", "tab:red")}
_METRIC_STYLES = {"uar": ("-", "o", 5, True, 3), "war": ("--", "s", 9, False, 2)}


def curves_figure(history: Sequence[dict[str, Any]]):
    """Train loss (left) and UAR / WAR per epoch on test (and val) (right); whole-epoch ticks."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = [rec["epoch"] for rec in history]
    fig = Figure(figsize=(10, 4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [rec.get("train_loss", math.nan) for rec in history], marker="o")
    ax_loss.set_ylabel("train loss")
    for split, colours in _SPLIT_COLOURS.items():
        if not any(split in rec for rec in history):
            continue
        for colour, metric in zip(colours, ("uar", "war")):
            style, marker, size, filled, z = _METRIC_STYLES[metric]
            ys = [rec.get(split, {}).get(metric, math.nan) for rec in history]
            ax_acc.plot(epochs, ys, style, color=colour, marker=marker, markersize=size, zorder=z,
                        markerfacecolor=colour if filled else "none", label=f"{split} {metric.upper()}")
    ax_acc.set_ylabel("%")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
        if len(epochs) <= 12:  # each epoch its tick (one epoch too, where a locator picks fractions)
            ax.set_xticks(epochs)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


def write_curves(run_dir: str | Path, history: Sequence[dict[str, Any]]) -> None:
    """curves.png (`curves_figure`)."""
    _save_figure(curves_figure(history), Path(run_dir) / "curves.png")


def _save_figure(fig, path: Path) -> None:
    _write(path, _figure_png(fig))


def _figure_png(fig, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def software_versions() -> dict[str, str]:
    """Versions of the software that matters for a run's numbers."""
    import open_clip
    import torch

    import trainer

    return {"dferclip-toolkit": trainer.__version__, "torch": torch.__version__,
            "open_clip": getattr(open_clip, "__version__", "?"), "python": platform.python_version(),
            "platform": platform.platform(terse=True)}


def build_summary(history: Sequence[dict[str, Any]], selected_epoch: int, select: str,
                  classes: Sequence[str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """summary.json content: the selected epoch's test metrics (percent) and how it was chosen."""
    rec = next(r for r in history if r["epoch"] == selected_epoch)
    test = rec["test"]
    summary = {
        "uar": test["uar"],
        "war": test["war"],
        "per_class_recall": dict(zip(classes, test["per_class_recall"])),
        "selection": SELECTION_LABELS[select],
        "selected_epoch": selected_epoch,
        "epochs_run": len(history),
        "classes": list(classes),
        "n_test": int(sum(sum(row) for row in test["confusion"])),
    }
    if "val" in rec:
        summary["val"] = {"uar": rec["val"]["uar"], "war": rec["val"]["war"]}
    summary.update(extra or {})
    return summary


def protocol_rows(results: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """Rows (fold, seed, uar, war) and the aggregate {"uar": {"mean", "std"}, "war": {...}}.

    The std is the sample standard deviation over every (fold, seed) run (0 for a single run).
    """
    rows = [{"fold": r.get("fold"), "seed": r["seed"], "uar": float(r["uar"]), "war": float(r["war"])} for r in results]
    agg: dict[str, dict[str, float]] = {}
    for metric in ("uar", "war"):
        values = [row[metric] for row in rows]
        mean = sum(values) / len(values) if values else math.nan
        var = sum((v - mean) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
        agg[metric] = {"mean": mean, "std": math.sqrt(var)}
    return rows, agg


def write_protocol_csv(path: str | Path, results: Sequence[dict[str, Any]]) -> Path:
    rows, agg = protocol_rows(results)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["fold", "seed", "uar", "war"])
    for row in rows:
        writer.writerow(["" if row["fold"] is None else row["fold"], row["seed"], f"{row['uar']:.4f}", f"{row['war']:.4f}"])
    writer.writerow(["mean", "", f"{agg['uar']['mean']:.4f}", f"{agg['war']['mean']:.4f}"])
    writer.writerow(["std", "", f"{agg['uar']['std']:.4f}", f"{agg['war']['std']:.4f}"])
    return _write(path, buf.getvalue())
