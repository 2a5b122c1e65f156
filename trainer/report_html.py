"""`report.html`: a run on one self-contained page (no scripts, no external styles or images: the
figures are embedded PNG data URIs), written at the end of every run and of every protocol run
(`trainer.protocol`) and by `trainer report RUN`.

A run's page: the summary (UAR, WAR, the selection rule and epoch, the test list), per-class recall,
the confusion matrix (counts and row-normalised, as a figure and as tables), the curves, the
descriptor texts the model was prompted with, the resolved config and the provenance (software
versions, seed, the descriptor set's and the checkpoint's sha256, the config's hash). A protocol
folder's page: the folds x seeds table with mean ± std beside the paper's numbers for the dataset,
linking each sub-run's own page.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from pathlib import Path
from typing import Any, Sequence

from promptkit.fileio import read_json_object

from trainer.errors import ReportError
from trainer.model.tinyface import file_sha256
from trainer.report import _figure_png, _write, confusion_figure, curves_figure, protocol_rows, read_metrics_jsonl, row_normalised, software_versions

REPORT_NAME = "report.html"
# the DFER-CLIP paper's own numbers (UAR, WAR, %): ViT-B/32, mean over folds (DFEW, MAFW) and 3 seeds
PAPER = {"dfew": (59.61, 71.25), "ferv39k": (41.27, 51.65), "mafw": (39.89, 52.55)}

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}td.text{text-align:left;max-width:48rem}
.big{font-size:1.6rem;font-weight:600}.muted{color:#666}img{max-width:100%;height:auto}
pre{background:#f6f6f6;padding:.75rem;overflow:auto;font-size:.8rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _pct(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{float(value):.2f}"


def _figure_tag(fig, alt: str) -> str:
    data = base64.b64encode(_figure_png(fig, dpi=90)).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], text_cols: Sequence[int] = ()) -> str:
    out = ["<table><thead><tr>", *(f"<th>{_e(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        cells = (f'<td class="text">{_e(c)}</td>' if i in text_cols else f"<td>{_e(c)}</td>" for i, c in enumerate(row))
        out += ["<tr>", *cells, "</tr>"]
    return "".join(out + ["</tbody></table>"])


def _page(title: str, body: Sequence[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _read_json(path: Path) -> dict[str, Any]:
    return read_json_object(path, "run file", ReportError,
                            missing=f"{path} is missing; is {path.parent} a finished trainer run?")


def _class_texts(run_dir: Path) -> dict[str, Any] | None:
    """The class texts the model was prompted with, from its checkpoint (None without one)."""
    from trainer.errors import TrainerError
    from trainer.model.sources import read_source

    try:
        obj, _ = read_source(run_dir)
    except TrainerError:
        return None
    texts = (obj.get("model") or {}).get("texts")
    return texts if isinstance(texts, dict) else None


def run_report(run_dir: str | Path) -> str:
    """The HTML of one finished run folder (summary.json, metrics.jsonl, config.json)."""
    run_dir = Path(run_dir)
    summary = _read_json(run_dir / "summary.json")
    config = _read_json(run_dir / "config.json")
    try:
        history = read_metrics_jsonl(run_dir / "metrics.jsonl")
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read {run_dir / 'metrics.jsonl'}: {exc}") from None
    classes = list(summary.get("classes") or [])
    selected = next((r for r in history if r.get("epoch") == summary.get("selected_epoch")), None)
    text = summary.get("text") or {}
    body = [f"<h1>DFER-CLIP run <code>{_e(run_dir.name)}</code></h1>",
            f'<p class="muted">{_e(run_dir.resolve())}</p>', "<h2>Summary</h2>", _summary_cards(summary),
            f"<p>Test list <code>{_e(text.get('test_list'))}</code> ({_e(summary.get('n_test'))} clips); "
            f"weights selected by <b>{_e(summary.get('selection'))}</b>: epoch {_e(summary.get('selected_epoch'))} "
            f"of {_e(summary.get('epochs_run'))}.</p>",
            "<h2>Per-class recall</h2>",
            _table(["class", "recall %"], [[c, _pct(r)] for c, r in (summary.get("per_class_recall") or {}).items()])]
    if selected is not None:
        body += _confusion_section(selected["test"]["confusion"], classes, summary)
    if history:
        body += ["<h2>Curves</h2>", _figure_tag(curves_figure(history), "train loss and UAR / WAR per epoch")]
    body += _texts_section(_class_texts(run_dir), text)
    body += ["<h2>Resolved config</h2>", f"<pre>{_e(json.dumps(config, indent=2))}</pre>"]
    body += _provenance(run_dir, summary, config)
    return _page(f"DFER-CLIP run {run_dir.name}", body)


def _summary_cards(summary: dict[str, Any]) -> str:
    cards = [("UAR %", _pct(summary.get("uar"))), ("WAR %", _pct(summary.get("war")))]
    if isinstance(summary.get("val"), dict):
        cards += [("val UAR %", _pct(summary["val"].get("uar"))), ("val WAR %", _pct(summary["val"].get("war")))]
    items = "".join(f'<div class="card"><div class="muted">{_e(k)}</div><div class="big">{_e(v)}</div></div>'
                    for k, v in cards)
    return f'<div class="cards">{items}</div>'


def _confusion_section(matrix: list[list[int]], classes: list[str], summary: dict[str, Any]) -> list[str]:
    title = f"test, epoch {summary.get('selected_epoch')} ({summary.get('selection')})"
    norm = row_normalised(matrix)
    return ["<h2>Confusion matrix</h2>", _figure_tag(confusion_figure(matrix, classes, title), "confusion matrix"),
            "<p>Counts (rows: true class, columns: predicted)</p>",
            _table(["true \\ predicted", *classes], [[c, *row] for c, row in zip(classes, matrix)]),
            "<p>Row-normalised (% of the true class)</p>",
            _table(["true \\ predicted", *classes], [[c, *(f"{100 * v:.1f}" for v in row)] for c, row in zip(classes, norm)])]


def _texts_section(texts: dict[str, Any] | None, text_info: dict[str, Any]) -> list[str]:
    head = f"<h2>Descriptor texts</h2><p>Set <code>{_e(text_info.get('set_id') or text_info.get('source'))}</code> " \
           f"({_e(text_info.get('content_hash'))})</p>"
    if texts is None:
        return [head, "<p class=\"muted\">The run folder holds no checkpoint to read the texts from.</p>"]
    rows = [[c, t] for c, t in zip(texts.get("classes") or [], texts.get("texts") or [])]
    out = [head, _table(["class", "text"], rows, text_cols=(1,))]
    if texts.get("negatives"):
        out += ["<p>Negative descriptions</p>",
                _table(["class", "negative"], list(zip(texts["classes"], texts["negatives"])), text_cols=(1,))]
    return out


def _provenance(run_dir: Path, summary: dict[str, Any], config: dict[str, Any]) -> list[str]:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":")).encode("utf-8")
    rows = [["seed", summary.get("seed")], ["world size", summary.get("world_size")],
            ["descriptor set", (summary.get("text") or {}).get("content_hash")],
            ["config.json (canonical JSON)", "sha256:" + hashlib.sha256(canonical).hexdigest()]]
    for name in ("best.pt", "last.pt"):
        if (run_dir / name).is_file():
            rows.append([name, file_sha256(run_dir / name)])
    rows.append(["parameters (trainable / total)", f"{summary.get('trainable_params')} / {summary.get('total_params')}"])
    recorded = summary.get("versions")
    versions = recorded or software_versions()
    note = "recorded by the run" if recorded else "of the software writing this report (the run recorded none)"
    rows += [[name, value] for name, value in versions.items()]
    return ["<h2>Provenance</h2>", f"<p class=\"muted\">Versions {note}.</p>", _table(["what", "value"], rows, (1,))]


def protocol_report(run_dir: str | Path) -> str:
    """The HTML of a protocol folder: folds x seeds, mean ± std, the paper's numbers, sub-run links."""
    run_dir = Path(run_dir)
    data = _read_json(run_dir / "protocol.json")
    config = _read_json(run_dir / "config.json")
    runs = data.get("runs") or []
    rows, agg = protocol_rows(runs)
    folds = sorted({r["fold"] for r in rows}, key=lambda f: (f is None, f or 0))
    seeds = sorted({r["seed"] for r in rows})
    cell = {(r["fold"], r["seed"]): f"{r['uar']:.2f} / {r['war']:.2f}" for r in rows}
    grid = [["-" if f is None else f, *(cell.get((f, s), "") for s in seeds)] for f in folds]
    dataset = (config.get("data") or {}).get("dataset")
    compare = [["this protocol (mean ± std)", f"{agg['uar']['mean']:.2f} ± {agg['uar']['std']:.2f}",
                f"{agg['war']['mean']:.2f} ± {agg['war']['std']:.2f}"]]
    if dataset in PAPER:
        compare.append([f"DFER-CLIP paper, {dataset} (ViT-B/32)", f"{PAPER[dataset][0]:.2f}", f"{PAPER[dataset][1]:.2f}"])
    links = [f'<li><a href="{_e(sub.name)}/{REPORT_NAME}">{_e(sub.name)}</a></li>'
             for sub in sorted(run_dir.glob("fold*_seed*")) if (sub / REPORT_NAME).is_file()]
    body = [f"<h1>DFER-CLIP protocol <code>{_e(run_dir.name)}</code></h1>", f'<p class="muted">{_e(run_dir.resolve())}</p>',
            f"<h2>Folds x seeds (UAR / WAR %)</h2><p>{len(rows)} runs on {_e(dataset or 'list files')}.</p>",
            _table(["fold \\ seed", *(str(s) for s in seeds)], grid),
            "<h2>Mean ± std</h2><p>Sample standard deviation over every (fold, seed) run.</p>",
            _table(["", "UAR %", "WAR %"], compare)]
    if dataset not in PAPER:
        body.append("<p class=\"muted\">The paper reports DFEW, FERV39k and MAFW only; this protocol ran on "
                    "another set, so there is no paper number to set beside it.</p>")
    if links:
        body += ["<h2>Sub-runs</h2>", "<ul>", *links, "</ul>"]
    body += ["<h2>Resolved config</h2>", f"<pre>{_e(json.dumps(config, indent=2))}</pre>"]
    return _page(f"DFER-CLIP protocol {run_dir.name}", body)


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the page of a run folder or a protocol folder (`out`, default RUN/report.html)."""
    run_dir = Path(run_dir).expanduser()
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir} is not a run folder; give the --out folder of a finished `trainer run`")
    if (run_dir / "protocol.json").is_file():
        page = protocol_report(run_dir)
    elif (run_dir / "summary.json").is_file():
        page = run_report(run_dir)
    else:
        raise ReportError(f"{run_dir} has no summary.json or protocol.json; is it a finished `trainer run` folder?")
    return _write(Path(out) if out is not None else run_dir / REPORT_NAME, page)
