"""Wall time of `promptkit generate --classes mafw` against a local server answering in 1 s per call.

Concurrency should make 11 classes cost about one call's latency, not eleven. Run:

    .venv/bin/python bench/bench_generate.py [--latency 1.0] [--repeats 3]

Prints, for each concurrency setting, the best wall time of the whole generate call (requests,
parsing, fitting, writing a version) after a warm-up that loads the tokenizer once.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from fake_llm_server import FakeLLMServer

from promptkit.generate import GenerateConfig, generate_set
from promptkit.llm import LLMConfig
from promptkit.store import Store
from promptkit.tokens import count_tokens

ANSWER = (
    "Sure! Here are some useful visual features:\n"
    "1. **Raised cheeks**: lifted and rounded\n2. **Crow's feet**: at the eye corners\n"
    "3. Upturned lip corners\n4. Visible upper teeth\n\nLet me know if you need more!"
)


def run_once(server: FakeLLMServer, concurrency: int, store_root: Path) -> float:
    llm = LLMConfig(model="fake-llm", base_url=server.url, api_key="sk-bench", concurrency=concurrency, retries=0)
    config = GenerateConfig(classes="mafw", llm=llm)
    start = time.perf_counter()
    generate_set(config, Store(store_root))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=1.0, help="seconds the server takes per call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 8, 1])
    args = parser.parse_args()

    count_tokens("warm up the tokenizer")  # loaded once per process; not part of the figure
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"server latency per call: {args.latency:.2f} s; 11 classes (mafw), 1 sample each")
    with FakeLLMServer(answer=lambda model, prompt: ANSWER, api_key="sk-bench", latency=args.latency) as server, \
            tempfile.TemporaryDirectory() as tmp:
        for concurrency in args.concurrency:
            times = [run_once(server, concurrency, Path(tmp)) for _ in range(args.repeats)]
            print(f"concurrency {concurrency:>2}: best {min(times):.2f} s, median {statistics.median(times):.2f} s "
                  f"({min(times) / args.latency:.2f}x one call), peak in flight {server.max_in_flight}")
            server.max_in_flight = 0


if __name__ == "__main__":
    main()
