"""`trainer pretrain`: contrastive pretraining of the tiny face-CLIP on the face world's captions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from trainer.pretrain.config import PretrainConfig

_DEFAULTS = PretrainConfig()


def pretrain(
    out: Annotated[Path, typer.Option("--out", help="New folder for weights, config and card (must not exist).")],
    steps: Annotated[int, typer.Option("--steps", help="Optimiser steps.")] = _DEFAULTS.steps,
    pairs: Annotated[int, typer.Option("--pairs", help="Frame-caption pairs rendered for training.")] = _DEFAULTS.pairs,
    batch: Annotated[int, typer.Option("--batch", help="Pairs per step (the contrastive batch).")] = _DEFAULTS.batch,
    lr: Annotated[float, typer.Option("--lr", help="Peak AdamW learning rate.")] = _DEFAULTS.lr,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the pairs and the training.")] = _DEFAULTS.seed,
    workers: Annotated[int, typer.Option("--workers", help="Processes rendering the pairs.")] = _DEFAULTS.workers,
    eval_pairs: Annotated[int, typer.Option("--eval-pairs", help="Held-out pairs for the retrieval check.")] = _DEFAULTS.eval_pairs,
    eval_clips: Annotated[int, typer.Option("--eval-clips", help="World clips per class for the zero-shot check (0: skip).")] = _DEFAULTS.eval_clips,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
) -> None:
    """Pretrain the tiny face-CLIP (open_clip) on rendered face frames and their captions.

    Writes model.safetensors (fp16), config.json and card.json to --out. The shipped weights
    (`--set model.pretrained=world`, the default preset's) were made by this command with its defaults."""
    from trainer.pretrain.run import run_pretrain

    console = Console(highlight=False, stderr=True)
    cfg = PretrainConfig(pairs=pairs, eval_pairs=eval_pairs, steps=steps, batch=batch, lr=lr, seed=seed,
                         workers=workers, eval_clips=eval_clips)

    def progress(row: dict) -> None:
        if not quiet:
            console.print(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))

    folder, card = run_pretrain(cfg, out, progress=progress)
    console.print(f"wrote {folder} ({card['weights_bytes'] / 1e6:.1f} MB) in {card['seconds']:.0f} s; "
                  f"image-to-text top-1 {100 * card['retrieval']['i2t_top1']:.1f} % of {card['retrieval']['pool']}")
    zs = card.get("zero_shot")
    if zs:
        console.print("zero-shot UAR on world clips: " + ", ".join(f"{k} {v:.1f} %" for k, v in zs["uar"].items()))


def register(app: typer.Typer) -> None:
    app.command("pretrain")(pretrain)
