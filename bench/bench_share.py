"""Benchmark sharing a model: `trainer export` times (hf, onnx), the ONNX vs PyTorch logit difference,
CPU latency per clip of the ONNX graph (onnxruntime) against PyTorch, and the size of report.html.

Models: the default preset's (the shipped tiny face-CLIP, 8 frames of 64 px) and ViT-B/32 with random
weights (16 frames of 224 px, the paper's input), both with the shipped `dfew/v1` descriptions. Each
model is saved with `save_model` and exported through the library (`trainer.export.export_model`),
as the command does. Latency: one forward pass of a batch of clips already decoded (frames in
[0, 1]); the median of `--repeats` after one warm-up; per clip = batch time / batch size.

    python bench/bench_share.py --threads 2 --repeats 5 --work /tmp/bench-share
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="/tmp/bench-share", help="folder for the checkpoints, exports and the run")
    p.add_argument("--threads", type=int, default=2, help="torch and onnxruntime intra-op threads")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batches", default="1,8", help="batch sizes timed")
    p.add_argument("--models", default="default,vitb32", help="default and/or vitb32")
    p.add_argument("--skip-run", action="store_true", help="do not train the small run used for report.html")
    return p.parse_args(argv)


def build(name: str):
    from promptkit.store import Store, resolve_store_root

    from trainer.model import ClassTexts, ModelConfig, build_model

    texts = ClassTexts.from_descriptor_set(Store(resolve_store_root(None)).load("dfew/v1"))
    torch.manual_seed(0)
    if name == "default":
        cfg = ModelConfig(backbone="tinyface", pretrained="world", normalize="clip", num_frames=8)
        return build_model(cfg, texts).eval()
    cfg = ModelConfig(backbone="ViT-B-32", pretrained=None, num_frames=16)
    return build_model(cfg, texts, load_weights=False).eval()


def median_ms(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def bench_model(name: str, args: argparse.Namespace, work: Path) -> dict:
    import onnxruntime as ort

    from trainer.export import export_model
    from trainer.model import save_model

    model = build(name)
    ckpt = save_model(model, work / f"{name}.pt")
    hf = export_model(ckpt, "hf", work / f"{name}-hf")
    onnx = export_model(ckpt, "onnx", work / f"{name}.onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    session = ort.InferenceSession(onnx["files"][0], opts, providers=["CPUExecutionProvider"])
    frames, size = model.config.num_frames, model.image_size
    row = {"model": name, "frames": frames, "image_size": size, "hf_export_s": hf["export_seconds"],
           "hf_size_mb": hf["size_bytes"] / 1e6, "onnx_export_s": onnx["export_seconds"],
           "onnx_verify_s": onnx["verify_seconds"], "onnx_size_mb": onnx["size_bytes"] / 1e6,
           "max_abs_diff": onnx["max_abs_diff"], "latency": []}
    for batch in (int(b) for b in args.batches.split(",")):
        x = torch.rand(batch, frames, 3, size, size, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            torch_ms = median_ms(lambda: model(x), args.repeats)  # noqa: B023 - used at once
        feed = {session.get_inputs()[0].name: x.numpy()}
        ort_ms = median_ms(lambda: session.run(None, feed), args.repeats)  # noqa: B023 - used at once
        row["latency"].append({"batch": batch, "torch_ms_per_clip": torch_ms / batch, "onnx_ms_per_clip": ort_ms / batch})
    return row


def report_size(work: Path) -> dict:
    """Train the small run of the tests (2 epochs, 4 frames) and measure its report.html."""
    py = [sys.executable, "-m", "trainer"]
    synth, run = work / "synth", work / "run"
    if not (synth / "test.txt").is_file():
        subprocess.run([*py, "synth", "--out", synth, "--train-per-class", "2", "--test-per-class", "1", "--size", "32",
                        "--min-frames", "6", "--max-frames", "12"], check=True, capture_output=True)
    subprocess.run([*py, "run", "--train-list", synth / "train.txt", "--test-list", synth / "test.txt", "--epochs", "2",
                    "--batch", "7", "--frames", "4", "--workers", "0", "--device", "cpu", "--quiet", "--overwrite",
                    "--out", run], check=True, capture_output=True)
    return {"report_html_kb": (run / "report.html").stat().st_size / 1e3}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    import onnxruntime

    out = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                       "onnxruntime": onnxruntime.__version__, "threads": args.threads, "cpu": platform.processor()},
           "models": [bench_model(name, args, work) for name in args.models.split(",")]}
    if not args.skip_run:
        out.update(report_size(work))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
