"""The issue-11 switches against the baseline: mean ± std UAR / WAR over seeds, on the default preset.

Every row is `trainer run` with the default preset (the shipped tiny face-CLIP fine-tuned on the
synthetic face world, default settings) plus one switch, once per seed, each into its own folder
under `--out` (a temporary folder unless given). Prints a Markdown table with each row's command.
Several minutes per run on 2 CPU cores: 3 seeds x all rows take a while.

Run from the repository root:  .venv/bin/python bench/bench_switches.py --seeds 1 2 3 [--only ema lora]
[--extra="--set data.synth_train_per_class=10"] (options added to every row, e.g. a low-data world)
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ADAMW_LRS = ["--lr-image", "2e-4", "--lr-temporal", "1e-3", "--lr-prompt", "1e-3"]
ROWS: list[tuple[str, list[str]]] = [
    ("baseline", []),
    ("label_smoothing", ["--label-smoothing", "0.1"]),
    ("balanced_sampling", ["--balanced-sampling"]),
    ("ema", ["--ema", "0.99"]),  # ~200 optimiser steps in the default run: a 0.999 average would lag
    ("test_views", ["--test-views", "2x3"]),
    ("random_words", ["--text", "random_words"]),
    ("lora", ["--peft", "lora"]),
    ("adapter", ["--peft", "adapter"]),
    # at the preset's lr_image (2e-3, sized for full fine-tuning) the zero-initialised PEFT weights
    # barely move; these rows give them 25 times more
    ("lora_lr5e-2", ["--peft", "lora", "--lr-image", "5e-2"]),
    ("adapter_lr5e-2", ["--peft", "adapter", "--lr-image", "5e-2"]),
    # AdamW at the default preset's SGD learning rates (2e-3 / 1e-2 / 1e-2) does not train; the
    # AdamW rows take ten times lower ones, with and without layer decay
    ("layer_decay_adamw_sgd_lrs", ["--layer-decay", "0.75", "--set", "optim.optimizer=adamw"]),
    ("adamw", ["--set", "optim.optimizer=adamw", *ADAMW_LRS]),
    ("layer_decay_adamw", ["--layer-decay", "0.75", "--set", "optim.optimizer=adamw", *ADAMW_LRS]),
    ("mixup", ["--mixup", "0.2"]),
    # the shipped dfew/v2 has v1's descriptions plus negatives and three descriptions per class
    ("negatives", ["--descriptions", "dfew/v2", "--negatives"]),
    ("multi_descriptions", ["--descriptions", "dfew/v2", "--multi-descriptions"]),
]


def run_once(switch: list[str], seed: int, out: Path) -> dict:
    """One `trainer run` into `out`; its summary.json."""
    if not (out / "summary.json").is_file():  # a finished run is reused (re-running resumes a bench)
        cmd = [sys.executable, "-m", "trainer", "run", "--seed", str(seed), "--quiet", "--overwrite", "--out", str(out), *switch]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise SystemExit(f"{shlex.join(cmd)} failed: {tail[0]}")
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.2f} ± {std:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=None, help="Folder for the runs (default: a temporary one).")
    parser.add_argument("--only", nargs="+", default=None, help=f"Rows to run (baseline always): {', '.join(n for n, _ in ROWS)}")
    parser.add_argument("--extra", default="", help="Options added to every row's `trainer run` (one shell-quoted string).")
    args = parser.parse_args()
    extra = shlex.split(args.extra)
    root = args.out or Path(tempfile.mkdtemp(prefix="bench-switches-"))
    rows = [(n, s) for n, s in ROWS if args.only is None or n == "baseline" or n in args.only]
    lines = ["| switch | command | UAR (mean ± std) | WAR (mean ± std) |", "|---|---|---|---|"]
    for name, switch in rows:
        summaries = [run_once([*extra, *switch], seed, root / name / f"seed{seed}") for seed in args.seeds]
        command = shlex.join(["trainer", "run", "--seed", "S", *extra, *switch])
        uar = mean_std([s["uar"] for s in summaries])
        war = mean_std([s["war"] for s in summaries])
        lines.append(f"| {name} | `{command}` | {uar} | {war} |")
        print(f"{name}: UAR {uar}  WAR {war}", file=sys.stderr, flush=True)
    print(f"\nseeds {' '.join(map(str, args.seeds))}; runs under {root}\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
