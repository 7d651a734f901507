"""Harness overhead of a vLLM-backed GSM8K run: evalboard's whole run (prompts, concurrent
streamed requests, answer extraction, scoring) vs the engine's own throughput on the same token
prompts (all of them in one batched `/v1/completions` call, nothing else), against one server.

    .venv/bin/python benchmarks/vllm_generation_overhead.py [--limit 64] [--max-new-tokens 256] [--model PATH]

Needs the vLLM venv (scripts/install_vllm.sh); meant for a GPU machine (the issue's target is an
overhead under 5% there), and runs on vLLM's CPU backend too. The engine's time is measured before
and after evalboard's run and averaged, so a drift of the server does not count as overhead.
"""

from __future__ import annotations

import argparse
import time

import evalboard
from evalboard.models.adapters.base import Capabilities, load_adapter
from evalboard.models.default_model import packaged_model_dir
from evalboard.taskdef.prepared import TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.registry import discover_tasks

TASK = "gsm8k_cot"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--model", default=str(packaged_model_dir("smollm2-135m-instruct")))
    args = parser.parse_args()
    options = TaskOptions(limit=args.limit, max_new_tokens=args.max_new_tokens)
    task = prepare_task(discover_tasks()[TASK], options)
    choose_formulation(task, Capabilities(True, True, True), "vllm")
    requests = [r for doc in task.docs for r in task.requests(doc)]

    began = time.perf_counter()
    server = load_adapter(f"vllm:{args.model},max_model_len=2048,concurrency={len(requests)}")
    print(f"vLLM server ready in {time.perf_counter() - began:.1f}s")
    params = requests[0].params
    prompts = [server._generation_prompt(r) for r in requests]  # the token ids evalboard sends

    def engine_alone() -> tuple[float, int]:
        from openai import OpenAI

        client = OpenAI(base_url=server.base_url, api_key="none", max_retries=0, timeout=3600)
        began = time.perf_counter()
        reply = client.completions.create(model=server.model, prompt=prompts, max_tokens=params.max_new_tokens,
                                          temperature=0.0, stop=list(params.stop) or None)
        return time.perf_counter() - began, reply.usage.completion_tokens

    def harness() -> tuple[float, int, float]:
        began = time.perf_counter()
        record = evalboard.evaluate(f"openai-compatible:{server.base_url}#{server.model},tokenizer={args.model}",
                                    TASK, limit=args.limit, max_new_tokens=args.max_new_tokens,
                                    concurrency=len(requests), output_dir=None, cache=False)
        return time.perf_counter() - began, record.usage.output_tokens, record.metric(TASK)

    engine_alone()  # warm-up
    before, engine_tokens = engine_alone()
    ours, our_tokens, score = harness()
    after, _ = engine_alone()
    server.close()
    engine = (before + after) / 2
    print(f"\n{TASK}: {len(requests)} prompts, up to {params.max_new_tokens} new tokens, greedy\n")
    print(f"{'run':<46} {'wall s':>7} {'new tokens':>10} {'tokens/s':>9}")
    print(f"{'engine alone (one batched call; before/after)':<46} {engine:>7.2f} {engine_tokens:>10} "
          f"{engine_tokens / engine:>9.1f}   ({before:.2f} / {after:.2f})")
    print(f"{'evalboard run (strict match ' + format(score, '.3f') + ')':<46} {ours:>7.2f} {our_tokens:>10} "
          f"{our_tokens / ours:>9.1f}")
    print(f"\nharness overhead: {100 * (ours / engine - 1):+.1f}% of wall time "
          f"({100 * (1 - (our_tokens / ours) / (engine_tokens / engine)):+.1f}% of throughput in tokens/s)")


if __name__ == "__main__":
    main()
