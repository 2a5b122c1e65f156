"""Data loading speed: trainer.data (uint8 clips, one crop per clip) vs a naive per-frame loader.

Generates JPEG frame folders (default 64 clips x 48 frames, 224x224), then times whole epochs of
16-frame training clips at 224x224 through a DataLoader with 2 workers:
- toolkit: VideoClipDataset(train=True, augment="dfew") + build_loader -> uint8 (B, 16, 3, 224, 224)
- naive: PIL per frame, torchvision per-frame transforms (ColorJitter, RandomResizedCrop, flip,
  ToTensor), float conversion in the worker -> float32 (B, 16, 3, 224, 224)
Epochs of the two loaders alternate (fair on a shared machine); the first epoch of each warms its
workers up and is not timed. Figures are clips per second (median over the timed epochs).

Run from the repository root:  .venv/bin/python bench/bench_data.py [--clips 64] [--epochs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from trainer.data import ClipRecord, VideoClipDataset, build_loader
from trainer.data.sampling import segment_indices


def make_clips(root: Path, clips: int, frames: int, size: int) -> list[ClipRecord]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    records = []
    for c in range(clips):
        folder = root / f"{c:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        base = rng.uniform(0, 255, 3)
        for f in range(frames):
            img = np.stack([(xx * (k + 1) + yy * f + base[k]) % 256 for k in range(3)], -1)
            img = img + rng.normal(0, 12, img.shape)  # texture, so JPEGs have realistic sizes
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{f + 1:05d}.jpg",
                                                                      quality=90)
        records.append(ClipRecord(folder, frames, c % 7))
    return records


class NaiveClips(Dataset):
    """What a first attempt looks like: PIL per frame, per-frame transforms, float in the worker."""

    def __init__(self, records: list[ClipRecord], size: int) -> None:
        self.records = records
        self.transform = T.Compose([T.ColorJitter(brightness=0.5), T.RandomResizedCrop(size),
                                    T.RandomHorizontalFlip(), T.ToTensor()])

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int):
        rec = self.records[index]
        paths = sorted(rec.path.glob("*"))
        indices = segment_indices(len(paths), 16, train=True, rng=np.random.default_rng(index))
        frames = [self.transform(Image.open(paths[i]).convert("RGB")) for i in indices]
        return torch.stack(frames), rec.label  # (16, 3, S, S) float32


def one_epoch(loader) -> float:
    start, n = time.perf_counter(), 0
    for _frames, labels in loader:
        n += labels.numel()
    return n / (time.perf_counter() - start)


def time_interleaved(loaders: dict, epochs: int, hooks: dict) -> dict[str, list[float]]:
    """Epochs of each loader in turn (naive, toolkit, naive, ...), so both see the same load on a
    shared machine; epoch 0 of each warms its workers up and is not counted."""
    rates: dict[str, list[float]] = {name: [] for name in loaders}
    for epoch in range(epochs + 1):
        for name, loader in loaders.items():
            if hooks.get(name) is not None:
                hooks[name](epoch)
            rate = one_epoch(loader)
            if epoch > 0:
                rates[name].append(rate)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--root", type=Path, default=None, help="reuse/keep the generated frames here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        records = make_clips(root, args.clips, args.frames, args.size)
        ours = VideoClipDataset(records, args.size, train=True, augment="dfew", seed=0)
        fast = build_loader(ours, args.batch, shuffle=True, drop_last=False, workers=args.workers)
        naive = DataLoader(NaiveClips(records, args.size), batch_size=args.batch, shuffle=True,
                           num_workers=args.workers, persistent_workers=args.workers > 0)
        results = time_interleaved({"naive": naive, "toolkit": fast}, args.epochs,
                                   {"toolkit": ours.set_epoch})
    print(f"{args.clips} clips x {args.frames} frames, {args.size}x{args.size} JPEG, 16 frames/clip, "
          f"batch {args.batch}, {args.workers} workers, {os.cpu_count()} CPUs, torch {torch.__version__}")
    for name, rates in results.items():
        print(f"{name:8s} clips/s: median {statistics.median(rates):7.1f}  "
              f"(epochs: {', '.join(f'{r:.1f}' for r in rates)})")
    speedup = statistics.median(results["toolkit"]) / statistics.median(results["naive"])
    pairs = [t / n for t, n in zip(results["toolkit"], results["naive"])]
    print(f"speed-up: {speedup:.2f}x (per epoch pair: {', '.join(f'{r:.2f}' for r in pairs)})")


if __name__ == "__main__":
    main()
