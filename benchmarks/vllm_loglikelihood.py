"""evalboard's openai-compatible adapter vs lm-eval's `local-completions`, side by side against one
real vLLM server serving the default model: HTTP requests per document, wall time, and agreement
of the loglikelihoods (ARC-Easy, 0-shot).

    .venv/bin/python benchmarks/vllm_loglikelihood.py [--limit 40] [--concurrency 1]

Needs the vLLM venv (scripts/install_vllm.sh). evalboard starts and stops the server itself
(`vllm:` model spec); lm-eval is pointed at the same server.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import evalboard  # noqa: F401  (sets OMP_WAIT_POLICY before torch loads)
from evalboard.models.adapters.base import Capabilities, load_adapter
from evalboard.models.default_model import packaged_model_dir
from evalboard.taskdef.prepared import TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.registry import discover_tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    from lm_eval.api.instance import Instance
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    task = prepare_task(discover_tasks()["arc_easy"], TaskOptions(limit=args.limit))
    choose_formulation(task, Capabilities(True, True, True), "vllm")
    requests = [r for doc in task.docs for r in task.requests(doc)]
    model = packaged_model_dir("smollm2-135m-instruct")
    began = time.perf_counter()
    ours = load_adapter(f"vllm:{model},max_model_len=2048,concurrency={args.concurrency}")
    print(f"vLLM server ready in {time.perf_counter() - began:.1f}s")
    log = Path(ours.describe()["server_log"])
    reference = LocalCompletionsAPI(
        base_url=f"{ours.base_url}/completions", model=ours.model, tokenizer=str(model),
        tokenizer_backend="huggingface", max_length=2047, num_concurrent=args.concurrency)

    def posts() -> int:
        return len(re.findall(r"POST /v1/completions", log.read_text()))

    def run_ours() -> list[float]:
        out: dict[int, float] = {}
        ours.loglikelihood(requests, lambda i, r: out.__setitem__(i, r.logprob))
        return [out[i] for i in range(len(requests))]

    def run_reference() -> list[float]:
        instances = [Instance("loglikelihood", {}, (r.context, r.continuation), i) for i, r in enumerate(requests)]
        return [lp for lp, _ in reference.loglikelihood(instances, disable_tqdm=True)]

    run_ours()  # warm-up: the server's first requests are slower
    results = {}
    for name, run in (("evalboard", run_ours), ("lm-eval local-completions", run_reference)):
        before, began = posts(), time.perf_counter()
        values = run()
        results[name] = (time.perf_counter() - began, posts() - before, values)
    ours.close()
    mine = results["evalboard"][2]
    print(f"\n{len(task.docs)} ARC-Easy documents, {len(requests)} loglikelihood requests, "
          f"concurrency {args.concurrency}\n")
    print(f"{'client':<28} {'HTTP requests':>13} {'per doc':>8} {'wall s':>7} {'max |Δll|':>10}")
    for name, (seconds, sent, values) in results.items():
        diff = max(abs(a - b) for a, b in zip(values, mine))
        print(f"{name:<28} {sent:>13} {sent / len(task.docs):>8.2f} {seconds:>7.2f} {diff:>10.1e}")
    ratio = results["lm-eval local-completions"][1] / results["evalboard"][1]
    speed = results["lm-eval local-completions"][0] / results["evalboard"][0]
    print(f"\nevalboard sends {ratio:.1f}x fewer requests and is {speed:.2f}x faster end to end")


if __name__ == "__main__":
    main()
