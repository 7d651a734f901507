"""Where evalboard's `hf:` greedy generation spends its time: cProfile over the first N items of a
generation task (default GSM8K 8-shot CoT, SmolLM2-135M-Instruct float32, batch 8), printing the
functions with the most time of their own and the attention function's share of the whole.

    .venv/bin/python benchmarks/profile_generation.py [--task gsm8k_cot] [--limit 8] [--top 25] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import evalboard  # noqa: E402,F401  (sets the thread settings before torch loads)
from evalboard.models.adapters.base import AdapterSettings, load_adapter  # noqa: E402
from evalboard.models.default_model import packaged_model_dir  # noqa: E402
from hf_generation import run_ours, task_requests  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="gsm8k_cot")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--data-dir", type=Path, default=None, help="local task data, as hf_generation.py's")
    args = parser.parse_args()
    adapter = load_adapter(f"hf:{packaged_model_dir('smollm2-135m-instruct')}",
                           AdapterSettings(batch_size=args.batch_size, device="cpu", dtype="float32"))
    requests = task_requests(args.task, args.limit, adapter.capabilities, args.max_new_tokens, args.data_dir)
    profile = cProfile.Profile()
    profile.enable()
    _, (wall, cpu), _, _ = run_ours(adapter, requests)
    profile.disable()
    stats = adapter.generator.stats.summary()
    print(f"{args.task}: {len(requests)} items, {wall:.1f} s wall, {cpu:.1f} s CPU; "
          f"{stats['generation_decode_passes']} decode passes, {stats['generation_mean_rows']} rows per pass")
    out = io.StringIO()
    table = pstats.Stats(profile, stream=out)
    table.sort_stats("tottime").print_stats(args.top)
    total = table.total_tt  # type: ignore[attr-defined]
    attention = next((value for key, value in table.stats.items()  # type: ignore[attr-defined]
                      if key[2] == "_shared_prefix_attention"), None)
    print(out.getvalue())
    if attention is not None:
        print(f"_shared_prefix_attention: {attention[3]:.1f} s cumulative of {total:.1f} s profiled "
              f"({attention[3] / total:.0%}), {attention[1]} calls")


if __name__ == "__main__":
    main()
