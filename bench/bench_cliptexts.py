"""Clip texts in the face world: without, with, and with shuffled clip texts (the control), per seed.

For each data regime (normal: the default preset's 60 training clips per class; low: 10), the
world's clips are described by the pixel-only captioner (bench/pixel_captioner.py) through the real
`promptkit describe-clips` against its OpenAI-compatible server, stored as a clip-text set; a
second set gives every clip another clip's text (a seeded permutation: same texts, wrong clips).
Then `trainer run --seed S` without clip texts, with them (`align` and `fuse`), and with the
shuffled ones. Finished runs and stored sets are reused, so the bench can be resumed.

Run from the repository root:
  .venv/bin/python bench/bench_cliptexts.py --seeds 1 2 3 --out /tmp/bct [--regimes normal low]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_switches import mean_std, run_once  # noqa: E402
from pixel_captioner import MODEL, serve  # noqa: E402

REGIMES = {"normal": [], "low": ["--set", "data.synth_train_per_class=10"]}
ROWS = [("none", []), ("align", ["--clip-text-mode", "align"]), ("align, shuffled texts", ["--clip-text-mode", "align"]),
        ("fuse", ["--clip-text-mode", "fuse"]), ("fuse, shuffled texts", ["--clip-text-mode", "fuse"])]


def world_lists(extra: list[str]) -> tuple[Path, Path]:
    from trainer.config import resolve_config
    from trainer.inputs import ensure_synthetic

    sets = [extra[i + 1] for i, a in enumerate(extra) if a == "--set"]
    return ensure_synthetic(resolve_config("default", sets=sets))


def describe(name: str, lists: tuple[Path, Path], store: Path) -> str:
    """The clip-text set `name` of both lists (described once, then reused); its id."""
    from promptkit.cliptexts import ClipTextStore

    cts = ClipTextStore(store)
    if not cts.has(name):
        server = serve()
        try:
            cmd = [sys.executable, "-c", "from promptkit.cli import main; main()", "describe-clips",
                   "--list", str(lists[0]), "--list", str(lists[1]), "--model", MODEL, "--base-url", server.url,
                   "--name", name, "--store", str(store), "--concurrency", "4"]
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OPENAI_API_KEY": "sk-local"})
            if proc.returncode != 0:
                raise SystemExit(f"describe-clips failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
        finally:
            server.stop()
    return cts.load(name).set_id


def shuffled(name: str, store: Path, seed: int = 0) -> str:
    """`name`-shuffled: the same texts, each on another clip (a seeded permutation)."""
    from promptkit.cliptexts import ClipTextStore

    cts = ClipTextStore(store)
    target = f"{name}-shuffled"
    if not cts.has(target):
        source = cts.load(name)
        ids = sorted(source.texts)
        order = np.random.default_rng(seed).permutation(len(ids))
        texts = {ids[i]: source.texts[ids[j]] for i, j in enumerate(order)}
        provenance = {"source": "shuffled", "from": source.set_id, "seed": seed,
                      "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        cts.add(target, texts, dict(source.missing), provenance)
    return cts.load(target).set_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", type=Path, required=True, help="Folder for the store and the runs.")
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), choices=list(REGIMES))
    args = parser.parse_args()
    store = args.out / "store"
    lines = ["| data | clip texts | command | UAR (mean ± std) | WAR (mean ± std) |", "|---|---|---|---|---|"]
    for regime in args.regimes:
        extra = REGIMES[regime]
        name = f"world-{regime}"
        real = describe(name, world_lists(extra), store)
        fake = shuffled(name, store)
        for row, switch in ROWS:
            ref = [] if row == "none" else ["--clip-texts", fake if "shuffled" in row else real]
            options = [*extra, *ref, *switch] + (["--store", str(store)] if ref else [])
            tag = row.replace(", ", "-").replace(" ", "_")
            summaries = [run_once(options, seed, args.out / regime / tag / f"seed{seed}") for seed in args.seeds]
            command = shlex.join(["trainer", "run", "--seed", "S", *options]).replace(str(store), "STORE")
            uar, war = mean_std([s["uar"] for s in summaries]), mean_std([s["war"] for s in summaries])
            per_seed = " / ".join(f"{s['uar']:.2f}" for s in summaries)
            lines.append(f"| {regime} | {row} | `{command}` | {uar} ({per_seed}) | {war} |")
            print(f"{regime} {row}: UAR {uar} ({per_seed})", file=sys.stderr, flush=True)
    print(f"\nseeds {' '.join(map(str, args.seeds))}; runs and the store under {args.out}\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
