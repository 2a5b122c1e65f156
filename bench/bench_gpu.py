"""GPU throughput of `trainer run`'s real step (issue #15), in one run on one model:

- compute-only step: `Trainer._step` on a batch already on the device (ms, clips/s, frames/s);
- loader-fed step: the same steps fed by the run's own train loader (VideoClipDataset + build_loader
  over generated JPEG clips, `--decode cpu|gpu`), and the ratio fed / compute;
- model FLOPs per step (torch.utils.flop_counter, forward + backward, eager) and MFU against a
  matmul measured in the same run (bf16 on CUDA, fp32 on the CPU);
- peak GPU memory, the compile time (`--compile`: first step minus a normal one), and the projected
  wall time of the DFEW protocol (5 folds x 50 epochs x 9,356 train clips, + 2,341 test clips per
  epoch; loading of test clips not included).

Weights are random (no download). Examples:
  python bench/bench_gpu.py --device cpu --batch 2 --frames 4 --size 32 --backbone tiny --workers 1 --steps 3
  python bench/bench_gpu.py --device cuda --precision bf16 --decode gpu --compile --workers 14 --json
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

DFEW = {"folds": 5, "epochs": 50, "train_clips": 9356, "test_clips": 2341}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, precision: str) -> dict:
    """TFLOP/s of a plain square matmul in the step's compute dtype (best of a few)."""
    dtype = torch.bfloat16 if device.type == "cuda" and precision == "bf16" else \
        torch.float16 if device.type == "cuda" and precision == "fp16" else torch.float32
    n = 8192 if device.type == "cuda" else 1024
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    best = math.inf
    for _ in range(5):
        _sync(device)
        start = time.perf_counter()
        for _ in range(10):
            a @ b
        _sync(device)
        best = min(best, (time.perf_counter() - start) / 10)
    return {"dtype": str(dtype).replace("torch.", ""), "n": n, "tflops": 2 * n**3 / best / 1e12}


def step_flops(config, texts, frames: torch.Tensor, labels: torch.Tensor, device: torch.device) -> int:
    """FLOPs of one forward + backward of the run's model (eager; the same model the run builds)."""
    from torch.utils.flop_counter import FlopCounterMode

    from trainer.model import autocast_for, build_model
    from trainer.scoring import to_model_input

    model = build_model(config.model_config(), texts).to(device).train()
    counter = FlopCounterMode(display=False)
    with counter:
        with autocast_for(device, config.precision):
            logits = model(to_model_input(frames, device)).float()  # (B, C)
        F.cross_entropy(logits, labels.to(device), reduction="sum").backward()
    del model
    return int(counter.get_total_flops())


def make_data(root: Path, args) -> tuple[Path, Path]:
    from trainer.data.synthetic import generate

    per_class = max(1, -(-args.clips // 7))
    made = generate(root, train_per_class=per_class, test_per_class=1, size=args.frame_px, seed=0,
                    min_frames=args.frames, max_frames=args.frames * 2)
    return made.train_list, made.test_list


def build_trainer(args, train_list: Path, test_list: Path, run_dir: Path):
    from trainer.config import config_from_dict, layered_config
    from trainer.distributed import DistContext
    from trainer.engine import Trainer
    from trainer.inputs import resolve_inputs

    model = {"backbone": args.backbone, "pretrained": None, "normalize": "clip",
             "quick_gelu": args.backbone != "tiny"}
    if args.size:
        model["image_size"] = args.size
    raw = layered_config("default", options={
        "model": model,
        "data": {"train_list": str(train_list), "test_list": str(test_list), "num_segments": args.frames,
                 "workers": args.workers, "augment": "dfew", "decode": args.decode},
        "optim": {"batch": args.batch, "epochs": 1000, "lr_image": 1e-5, "lr_temporal": 1e-2, "lr_prompt": 1e-3,
                  "lr_head": 1e-3, "milestones": [999], "clip_grad": None},
        "text": {"source": "classnames"}, "precision": args.precision, "device": args.device,
        "compile": args.compile})
    raw["model"]["pretrained"] = None  # random weights: an option of None would mean "not given"
    config = config_from_dict(raw)
    inputs = resolve_inputs(config)
    ctx = DistContext(device=torch.device(args.device))
    return config, inputs, Trainer(config, inputs, run_dir, ctx)


def time_compute(trainer, frames, labels, device, args) -> tuple[list[float], float]:
    """Per-step seconds of `_step` on a resident batch, and the first step's seconds."""
    times = []
    for i in range(1 + args.warmup + args.steps):
        _sync(device)
        start = time.perf_counter()
        trainer._first_step(frames, labels) if i == 0 else trainer._step(frames, labels)
        _sync(device)
        times.append(time.perf_counter() - start)
    return times[1 + args.warmup:], times[0]


def time_fed(trainer, device, args) -> float:
    """Mean seconds per step of steps fed by the run's train loader (no sync inside the timing)."""
    done, epoch, start = 0, 0, None
    while done < args.warmup + args.steps:
        trainer.train_set.set_epoch(epoch)
        for batch, labels in trainer.train_loader:
            frames = trainer.decoder(batch) if trainer.decoder is not None else batch
            trainer._step(frames, labels)
            done += 1
            if done == args.warmup:
                _sync(device)
                start = time.perf_counter()
            if done == args.warmup + args.steps:
                break
        epoch += 1
    _sync(device)
    return (time.perf_counter() - start) / args.steps


def time_eval(trainer, frames, device, args) -> float:
    """Seconds of one no-grad forward of the batch (the test pass's compute)."""
    from trainer.model import autocast_for
    from trainer.scoring import to_model_input

    trainer.core.eval()
    times = []
    with torch.no_grad():
        for _ in range(2 + args.steps):
            _sync(device)
            start = time.perf_counter()
            with autocast_for(device, args.precision):
                trainer.core(to_model_input(frames, device))
            _sync(device)
            times.append(time.perf_counter() - start)
    trainer.core.train()
    return statistics.median(times[2:])


def project(step_s: float, eval_s: float, batch: int) -> dict:
    steps = DFEW["train_clips"] // batch  # drop_last
    evals = math.ceil(DFEW["test_clips"] / batch)
    per_epoch = steps * step_s + evals * eval_s
    hours = DFEW["folds"] * DFEW["epochs"] * per_epoch / 3600
    return {"steps_per_epoch": steps, "epoch_s": round(per_epoch, 1), "protocol_h": round(hours, 2), **DFEW}


def run(args) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    peak = matmul_peak(device, args.precision)
    with tempfile.TemporaryDirectory() as tmp:
        train_list, test_list = make_data(Path(tmp) / "data", args) if args.data is None else \
            (Path(args.data) / "train.txt", Path(args.data) / "test.txt")
        config, inputs, trainer = build_trainer(args, train_list, test_list, Path(tmp) / "run")
        size = trainer.core.image_size
        frames = torch.randint(0, 256, (args.batch, args.frames, 3, size, size), dtype=torch.uint8, device=device)
        labels = torch.randint(0, len(inputs.classes), (args.batch,))
        flops = step_flops(config, inputs.texts, frames, labels, device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        compute, first = time_compute(trainer, frames, labels, device, args)
        fed = time_fed(trainer, device, args)
        eval_s = time_eval(trainer, frames, device, args)
    step = statistics.median(compute)
    out = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "backbone": args.backbone, "batch": args.batch, "frames": args.frames,
        "image_size": size, "frame_px": args.frame_px, "precision": args.precision, "decode": args.decode,
        "compile": args.compile, "workers": args.workers,
        "compute": {"step_ms": round(step * 1e3, 2), "clips_per_s": round(args.batch / step, 2),
                    "frames_per_s": round(args.batch * args.frames / step, 1)},
        "fed": {"step_ms": round(fed * 1e3, 2), "clips_per_s": round(args.batch / fed, 2)},
        "fed_over_compute": round(step / fed, 3),
        "flops_per_step": flops, "tflops_per_s": round(flops / step / 1e12, 3),
        "matmul_peak": {**peak, "tflops": round(peak["tflops"], 3)},
        "mfu": round(flops / step / 1e12 / peak["tflops"], 4),
        "first_step_s": round(first, 2),
        "compile_s": round(first - step, 2) if args.compile else None,
        "peak_gpu_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "eval_batch_ms": round(eval_s * 1e3, 2),
        "dfew_projection": project(fed, eval_s, args.batch),
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="ViT-B-32")
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=0, help="model input size (0: the backbone's own)")
    parser.add_argument("--frame-px", type=int, default=224, help="side of the generated JPEG frames")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--decode", default="auto", choices=("cpu", "gpu", "auto"))
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--workers", type=int, default=14)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--clips", type=int, default=0, help="generated train clips (0: 4 batches' worth)")
    parser.add_argument("--data", default=None, help="a folder with train.txt/test.txt from a previous run's data")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    args.clips = args.clips or 4 * args.batch
    result = run(args)
    if args.json:
        print(json.dumps(result))
        return
    c, f, p = result["compute"], result["fed"], result["dfew_projection"]
    print(f"{result['device']}, torch {result['torch']}, {args.backbone} {args.batch}x{args.frames}x{result['image_size']} "
          f"{args.precision}, decode {args.decode}, compile {args.compile}, {args.workers} workers")
    print(f"compute-only step  {c['step_ms']} ms  {c['clips_per_s']} clips/s  {c['frames_per_s']} frames/s")
    print(f"loader-fed step    {f['step_ms']} ms  {f['clips_per_s']} clips/s  (fed/compute {result['fed_over_compute']})")
    print(f"model FLOPs/step   {result['flops_per_step'] / 1e9:.1f} GFLOP = {result['tflops_per_s']} TFLOP/s; "
          f"matmul peak {result['matmul_peak']['tflops']} TFLOP/s ({result['matmul_peak']['dtype']}); MFU {result['mfu']:.1%}")
    print(f"peak GPU memory    {result['peak_gpu_gib']} GiB; first step {result['first_step_s']} s; compile {result['compile_s']} s")
    print(f"DFEW protocol      {p['protocol_h']} h projected ({p['epoch_s']} s/epoch x {p['epochs']} epochs x {p['folds']} folds)")


if __name__ == "__main__":
    main()
