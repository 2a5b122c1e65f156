"""Balanced sampling where it matters: the face world with imbalanced train and test splits.

The default world is balanced (60 train / 20 test clips per class), so UAR equals WAR and class-
balanced sampling has nothing to trade. This benchmark keeps a class-imbalanced subset of the
default set's lists (the first clips of each class in list order; counts below, disgust and fear
rare as in DFEW) and runs `trainer run` on those lists with and without `--balanced-sampling`, once
per seed, printing mean ± std UAR and WAR with each row's command.

Run from the repository root:  .venv/bin/python bench/bench_imbalance.py --seeds 1 2 3 --out /tmp/bimb
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from pathlib import Path

from bench_switches import mean_std, run_once  # this folder: one way to run and summarise a row

from trainer.config import resolve_config
from trainer.inputs import ensure_synthetic

# clips kept per class (DFEW label order: happiness, sadness, neutral, anger, surprise, disgust, fear)
TRAIN_COUNTS = (60, 45, 60, 40, 30, 6, 15)
TEST_COUNTS = (20, 15, 20, 14, 10, 4, 6)
ROWS = (("imbalanced", []), ("imbalanced+balanced_sampling", ["--balanced-sampling"]))


def subset(lines: list[str], counts: tuple[int, ...]) -> list[str]:
    """The first `counts[label]` lines of each label, in list order."""
    kept, seen = [], [0] * len(counts)
    for line in lines:
        label = int(line.split()[-1])
        if seen[label] < counts[label]:
            kept.append(line)
            seen[label] += 1
    if seen != list(counts):
        raise SystemExit(f"the default set has fewer clips than asked: got {seen}, wanted {list(counts)}")
    return kept


def lists(root: Path) -> tuple[Path, Path]:
    train, test = ensure_synthetic(resolve_config("default"))
    out = []
    for name, source, counts in (("train", train, TRAIN_COUNTS), ("test", test, TEST_COUNTS)):
        path = root / f"{name}_imbalanced.txt"
        lines = [x for x in Path(source).read_text(encoding="utf-8").splitlines() if x.strip()]
        path.write_text("\n".join(subset(lines, counts)) + "\n", encoding="utf-8")
        out.append(path)
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="bench-imbalance-"))
    root.mkdir(parents=True, exist_ok=True)
    train, test = lists(root)
    lines = ["| row | command | UAR (mean ± std) | WAR (mean ± std) |", "|---|---|---|---|"]
    for name, switch in ROWS:
        base = ["--train-list", str(train), "--test-list", str(test), "--classes", "dfew", *switch]
        summaries = [run_once(base, seed, root / name / f"seed{seed}") for seed in args.seeds]
        command = shlex.join(["trainer", "run", "--seed", "S", "--train-list", "TRAIN", "--test-list", "TEST",
                              "--classes", "dfew", *switch])
        uar, war = mean_std([s["uar"] for s in summaries]), mean_std([s["war"] for s in summaries])
        lines.append(f"| {name} | `{command}` | {uar} | {war} |")
        print(f"{name}: UAR {uar}  WAR {war}", file=sys.stderr, flush=True)
    print(f"\ntrain {list(TRAIN_COUNTS)} / test {list(TEST_COUNTS)} clips per class; seeds "
          f"{' '.join(map(str, args.seeds))}; runs under {root}\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
