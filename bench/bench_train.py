"""Train-step throughput of `trainer run`'s step: step time and clips/s.

Two figures per setting:
- compute: forward + backward + SGD step on uint8 clips already in memory (the model's cost);
- with loading: the same steps fed by the real loader (VideoClipDataset + workers) over generated
  JPEG clips, so the figure shows whether loading hides behind compute.

Examples:
  python bench/bench_train.py --backbone tiny --batch 8 --frames 16
  python bench/bench_train.py --backbone ViT-B-32 --batch 2 --frames 16 --steps 3
  python bench/bench_train.py --backbone ViT-B-32 --batch 48 --frames 16 --device cuda --precision bf16 --loader
Weights are random (no download); the figures do not depend on them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

CLASSES = ("happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear")


def build(backbone: str, frames: int, device: torch.device):
    from trainer.model import ClassTexts, ModelConfig, build_model

    model = build_model(ModelConfig(backbone=backbone, num_frames=frames), ClassTexts.from_class_names(CLASSES))
    model = model.to(device).train()
    groups = model.param_groups({"image": 1e-5, "temporal": 1e-2, "prompt": 1e-3, "head": 1e-3})
    return model, torch.optim.SGD(groups, lr=1e-3, momentum=0.9, weight_decay=1e-4)


def step(model, optimizer, clips: torch.Tensor, labels: torch.Tensor, device, precision: str) -> None:
    from trainer.data.dataset import to_model_input
    from trainer.model import autocast_for

    with autocast_for(device, precision):
        logits = model(to_model_input(clips, device))  # (B, C)
    loss = F.cross_entropy(logits.float(), labels.to(device))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_compute(model, optimizer, args, device) -> list[float]:
    size = model.image_size
    clips = torch.randint(0, 256, (args.batch, args.frames, 3, size, size), dtype=torch.uint8)  # (B, T, 3, H, W)
    labels = torch.randint(0, len(CLASSES), (args.batch,))
    if device.type == "cuda":
        clips = clips.pin_memory()
    times = []
    for i in range(args.warmup + args.steps):
        _sync(device)
        t0 = time.perf_counter()
        step(model, optimizer, clips, labels, device, args.precision)
        _sync(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    return times


def time_with_loader(model, optimizer, args, device) -> list[float]:
    from trainer.data.annotations import read_annotations
    from trainer.data.dataset import VideoClipDataset, build_loader
    from trainer.data.synthetic import generate

    n_clips = args.batch * (args.warmup + args.steps)
    per_class = -(-n_clips // len(CLASSES))
    with tempfile.TemporaryDirectory() as tmp:
        made = generate(Path(tmp), train_per_class=per_class, test_per_class=1, size=max(model.image_size, 24),
                        min_frames=args.frames, max_frames=args.frames * 2)
        records = read_annotations(made.train_list, num_classes=len(CLASSES))
        dataset = VideoClipDataset(records, model.image_size, train=True, augment="dfew", num_segments=args.frames)
        loader = build_loader(dataset, args.batch, shuffle=True, drop_last=True, workers=args.workers, seed=0)
        times = []
        _sync(device)
        t0 = time.perf_counter()
        for i, (clips, labels) in enumerate(loader):
            step(model, optimizer, clips, labels, device, args.precision)
            _sync(device)
            now = time.perf_counter()
            if i >= args.warmup:
                times.append(now - t0)
            t0 = now
            if len(times) == args.steps:
                break
        return times


def summarise(times: list[float], batch: int) -> dict:
    median = statistics.median(times)
    return {"steps": len(times), "step_s_median": round(median, 4), "step_s_mean": round(statistics.mean(times), 4),
            "clips_per_s": round(batch / median, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="tiny")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="compute timing repeats (best median is reported)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--loader", action="store_true", help="also time the steps fed by the real loader")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model, optimizer = build(args.backbone, args.frames, device)
    # best of --repeats medians: the machine may be shared, other tenants only ever slow a repeat down
    runs = [summarise(time_compute(model, optimizer, args, device), args.batch) for _ in range(args.repeats)]
    result = {"backbone": args.backbone, "batch": args.batch, "frames": args.frames, "image_size": model.image_size,
              "device": str(device), "precision": args.precision, "torch_threads": torch.get_num_threads(),
              "compute": min(runs, key=lambda r: r["step_s_median"]),
              "compute_medians_s": [r["step_s_median"] for r in runs]}
    if args.loader:
        result["with_loader"] = {**summarise(time_with_loader(model, optimizer, args, device), args.batch),
                                 "workers": args.workers}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
