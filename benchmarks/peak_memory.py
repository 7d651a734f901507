"""Peak memory of a SmolLM2 run on the six tasks, as a ratio to the model's own footprint.

    .venv/bin/python benchmarks/peak_memory.py [--limit 20] [--generative-limit 5] [--batch-size 8]

Each side runs in a fresh process and is measured by the kernel (peak resident set size from
wait4): the footprint is a process that loads the model and runs one forward pass (the weights
are memory-mapped, so only a pass makes them all resident); the run evaluates ARC-Easy,
ARC-Challenge, HellaSwag, MMLU, GSM8K (8-shot chain of thought), HumanEval (sandboxed) and IFEval with the main job's limits
and generation cap.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

FOOTPRINT = """
import torch, evalboard
from evalboard.models.adapters.base import load_adapter
adapter = load_adapter("hf:smollm2-135m-instruct")
with torch.inference_mode():
    adapter.model(torch.tensor([adapter.encode("The capital of France is")]))
"""

RUN = """
import evalboard
common = dict(batch_size={batch}, output_dir=None, cache=False)
evalboard.evaluate("hf:smollm2-135m-instruct", "arc_easy,arc_challenge,hellaswag", limit={limit}, **common)
evalboard.evaluate("hf:smollm2-135m-instruct", "mmlu", limit=2, **common)  # per subject, as the main job's
evalboard.evaluate("hf:smollm2-135m-instruct", "gsm8k_cot,humaneval,ifeval", limit={generative_limit},
                   max_new_tokens={max_new_tokens}, allow_code_execution=True, **common)
"""


def peak_rss_mib(code: str) -> float:
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        sys.exit(f"measured process failed:\n{errors.decode(errors='replace')[-2000:]}")
    return usage.ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=20, help="items per multiple-choice task")
    parser.add_argument("--generative-limit", type=int, default=5, help="items per generative task")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="cap on generated tokens, as the main job's")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    footprint = peak_rss_mib(FOOTPRINT)
    run = peak_rss_mib(RUN.format(batch=args.batch_size, limit=args.limit, generative_limit=args.generative_limit,
                                 max_new_tokens=args.max_new_tokens))
    print(f"model footprint (load + one forward pass): {footprint:.0f} MiB")
    print(f"peak of the run ({args.limit} multiple-choice / {args.generative_limit} generative items per task, "
          f"batch size {args.batch_size}): {run:.0f} MiB")
    print(f"ratio: {run / footprint:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
