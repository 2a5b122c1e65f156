"""Benchmark one DFER-CLIP training step (forward + backward + SGD step): time and peak memory.

Each configuration runs in a fresh subprocess, so peak memory is that process's own:
CPU: the rise of max RSS (resource.getrusage) from just before the first step to the end;
CUDA: torch.cuda.max_memory_allocated over the timed steps. Weights are random (no download).

    python bench/bench_model.py                                  # ViT-B-32, 2 clips x 16 frames, CPU, cut vs full
    python bench/bench_model.py --device cuda --batch 48 --precision bf16 --precision fp32
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default="ViT-B-32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", action="append", choices=["fp32", "bf16", "fp16"], help="repeatable (default fp32)")
    p.add_argument("--batch", type=int, default=2, help="clips per step")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--steps", type=int, default=3, help="timed steps")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--text-reps", type=int, default=5, help="timed forward+backward passes of the text side alone")
    p.add_argument("--texts", default="dfew/v1", help="descriptor set for the prompts (shipped sets work offline)")
    p.add_argument("--cut", choices=["both", "on", "off"], default="both", help="text-length cut of the text encoder")
    p.add_argument("--grad-checkpointing", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the results here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def run_child(args: argparse.Namespace, precision: str, cut: bool) -> dict:
    """One measurement in this process (called in a fresh subprocess)."""
    import torch

    from promptkit.store import Store, resolve_store_root

    from trainer.model import ClassTexts, ModelConfig, autocast_for, build_model

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    texts = ClassTexts.from_descriptor_set(Store(resolve_store_root(None)).load(args.texts))
    cfg = ModelConfig(backbone=args.backbone, num_frames=args.frames, grad_checkpointing=args.grad_checkpointing)
    model = build_model(cfg, texts).to(args.device).train()
    model.text_truncation = cut
    opt = torch.optim.SGD(model.param_groups({"image": 1e-5, "temporal": 1e-2, "prompt": 1e-3}), lr=1e-3, momentum=0.9)
    size = model.image_size
    x = torch.rand(args.batch, args.frames, 3, size, size, device=args.device)
    y = torch.randint(0, len(texts), (args.batch,), device=args.device)
    cuda = torch.device(args.device).type == "cuda"

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast_for(args.device, precision):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(args.warmup):
        step()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    text_times = []
    for _ in range(args.text_reps):  # the text side alone: where the cut acts
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast_for(args.device, precision):
            model.text_features().sum().backward()
        if cuda:
            torch.cuda.synchronize()
        text_times.append(time.perf_counter() - t0)
    eos = model.prompt_learner.eos_index
    return {
        "backbone": args.backbone, "device": args.device, "precision": precision, "batch": args.batch,
        "frames": args.frames, "text_cut": cut, "text_positions": int(eos.max()) + 1 if cut else 77,
        "step_s_median": statistics.median(times), "step_s_all": [round(t, 4) for t in times],
        "text_fwd_bwd_s_median": statistics.median(text_times) if text_times else None,
        "load_avg_1m": os.getloadavg()[0],
        "peak_rss_rise_mib": (rss_after - rss_before) / 1024, "max_rss_mib": rss_after / 1024,
        "cuda_peak_alloc_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "threads": torch.get_num_threads(),
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = f"{names[0]} x{len(names)}" if names else cpu
    except OSError:
        pass
    return f"{platform.system()} {cpu}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        precision, cut = args.child.split(",")
        print(json.dumps(run_child(args, precision, cut == "1")))
        return 0
    precisions = args.precision or ["fp32"]
    cuts = {"both": [True, False], "on": [True], "off": [False]}[args.cut]
    passthrough = _drop_option(list(argv if argv is not None else sys.argv[1:]), "--json")
    results = []
    for precision in precisions:
        for cut in cuts:
            cmd = [sys.executable, __file__, *_drop_option(passthrough, "--precision"), "--child", f"{precision},{int(cut)}"]
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr[-2000:])
                return proc.returncode
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    report = {"machine": machine(), "command": " ".join(["python bench/bench_model.py", *passthrough]), "results": results}
    for r in results:
        if r["cuda_peak_alloc_mib"]:
            mem = f"cuda peak {r['cuda_peak_alloc_mib']:.0f} MiB"
        else:
            mem = f"RSS rise {r['peak_rss_rise_mib']:.0f} MiB (max RSS {r['max_rss_mib']:.0f} MiB)"
        cut = "on " if r["text_cut"] else "off"
        print(f"{r['backbone']} {r['device']} {r['precision']} batch {r['batch']}x{r['frames']} text cut {cut} "
              f"({r['text_positions']} positions): step {r['step_s_median']:.3f} s median of {len(r['step_s_all'])}, "
              f"text side {r['text_fwd_bwd_s_median']:.3f} s, {mem}, load {r['load_avg_1m']:.1f}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=2)
    return 0


def _drop_option(argv: list[str], name: str) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == name:
            skip = True
            continue
        if a.startswith(name + "="):
            continue
        out.append(a)
    return out


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
