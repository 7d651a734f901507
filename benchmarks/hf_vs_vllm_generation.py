"""`hf:` against `vllm:` for greedy generation on this machine: the same model, the very same
requests (the first N of a task), each adapter's own batching (`hf:`: the shared-prefix
continuous batcher, batch size 8; `vllm:`: a server started by the harness, all requests in
flight). Prints the vLLM server's start time apart from its generation time, the texts that agree,
and when `vllm:` would pay off: the number of requests after which its start is won back.

    .venv/bin/python benchmarks/hf_vs_vllm_generation.py [--limit 16] [--tasks gsm8k_cot,ifeval]
        [--max-new-tokens N] [--model PATH]

Needs the vLLM venv (scripts/install_vllm.sh). Both run float32 on the same CPU cores one after the
other, so only their ratio is meaningful.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import evalboard  # noqa: E402,F401  (sets OMP_WAIT_POLICY before torch loads)
from evalboard.models.adapters.base import AdapterSettings, load_adapter  # noqa: E402
from evalboard.models.default_model import packaged_model_dir  # noqa: E402
from evalboard.requests import GenerateRequest  # noqa: E402
from hf_generation import run_ours, task_requests  # noqa: E402


def generate(adapter: object, requests: list[GenerateRequest]) -> tuple[list[str], float, int]:
    """(texts, wall seconds, new tokens) of one adapter on the requests."""
    texts, (wall, _), _, new_tokens = run_ours(adapter, requests)
    return texts, wall, sum(new_tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=16)
    parser.add_argument("--tasks", default="gsm8k_cot,ifeval")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="cap every task's token limit")
    parser.add_argument("--model", default=str(packaged_model_dir("smollm2-135m-instruct")))
    args = parser.parse_args()

    began = time.perf_counter()
    hf = load_adapter(f"hf:{args.model}", AdapterSettings(batch_size=8, device="cpu", dtype="float32"))
    hf_load = time.perf_counter() - began
    began = time.perf_counter()
    vllm = load_adapter(f"vllm:{args.model},dtype=float32,max_model_len=4096",
                        AdapterSettings(concurrency=args.limit))
    vllm_start = time.perf_counter() - began
    rows = []
    try:
        for name in args.tasks.split(","):
            requests = task_requests(name, args.limit, hf.capabilities, args.max_new_tokens)
            ours, hf_s, hf_tokens = generate(hf, requests)
            served, vllm_s, vllm_tokens = generate(vllm, requests)
            same = sum(a == b for a, b in zip(ours, served))
            rows.append((name, len(requests), same, hf_s, hf_tokens, vllm_s, vllm_tokens))
            print(f"{name}: hf {hf_s:.1f}s ({hf_tokens} tokens), vllm {vllm_s:.1f}s ({vllm_tokens} tokens), "
                  f"{same}/{len(requests)} texts identical", flush=True)
    finally:
        vllm.close()
    print(f"\n{Path(args.model).name}, first {args.limit} requests, greedy, float32, {os.cpu_count()} CPU cores; "
          f"hf: model load {hf_load:.1f}s; vllm: server start {vllm_start:.1f}s\n")
    print(f"{'task':<12} {'items':>5} {'same':>5} {'hf s':>7} {'hf tok/s':>8} {'vllm s':>7} {'vllm tok/s':>10} "
          f"{'hf/vllm':>7} {'break-even':>10}")
    for name, n, same, hf_s, hf_tokens, vllm_s, vllm_tokens in rows:
        per_request_saved = (hf_s - vllm_s) / n
        # requests after which vLLM's start (beyond hf's load) is won back; "never" if hf is faster
        even = f"{(vllm_start - hf_load) / per_request_saved:.0f}" if per_request_saved > 0 else "never"
        print(f"{name:<12} {n:>5} {same:>5} {hf_s:>7.1f} {hf_tokens / hf_s:>8.1f} {vllm_s:>7.1f} "
              f"{vllm_tokens / vllm_s:>10.1f} {hf_s / vllm_s:>6.2f}x {even:>10}")


if __name__ == "__main__":
    main()
