"""evalboard's `hf:` generation vs lm-eval's `hf` backend (HFLM.generate_until), side by side in one
process: the same model, the very same prompt strings with the same stop sequences and token
limits, greedy, the same batch size. Checks that the texts agree and prints wall-time ratios,
token efficiency and memory: (the model's footprint + what evalboard's run added to the process's
peak resident memory) / the footprint.

    .venv/bin/python benchmarks/hf_generation.py [--limit 50] [--tasks gsm8k_cot,ifeval,humaneval]
        [--batch-size 8] [--max-new-tokens N] [--data-dir DIR]

Defaults: SmolLM2-135M-Instruct (the packaged default model, float32), the first 50 items of each
task, batch size 8, each task's own token limit. Both sides run on the same two CPU cores one
after the other, so only their ratio is meaningful; run it with `nice` on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import evalboard  # noqa: E402,F401  (sets OMP_WAIT_POLICY before torch loads)
from evalboard.models.adapters.base import AdapterSettings, load_adapter  # noqa: E402
from evalboard.models.default_model import packaged_model_dir  # noqa: E402
from evalboard.models.generation import GenerationStats  # noqa: E402
from evalboard.requests import GenerateRequest, Response  # noqa: E402
from evalboard.taskdef.prepared import TaskOptions, choose_formulation, prepare_task  # noqa: E402
from evalboard.taskdef.registry import discover_tasks  # noqa: E402


def _rss_mib(field: str) -> float:
    """VmRSS or VmHWM (the peak since the last reset) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def task_requests(name: str, limit: int, capabilities: Any, max_new_tokens: int | None,
                  data_dir: Path | None = None) -> list[GenerateRequest]:
    options = TaskOptions(limit=limit, max_new_tokens=max_new_tokens, data_dir=data_dir)
    task = prepare_task(discover_tasks()[name], options)
    choose_formulation(task, capabilities, "hf")
    # a grouped task (bbh_cot_fewshot) limits each subtask: its first `limit` are one subtask's
    requests = [r for doc in task.docs for r in task.requests(doc)][:limit]
    assert all(isinstance(r, GenerateRequest) for r in requests), f"{name} is not a generation task"
    return requests  # type: ignore[return-value]


def run_ours(adapter: Any, requests: list[GenerateRequest]) -> tuple[list[str], tuple[float, float], float, list[int]]:
    """(texts, (wall, CPU) seconds, MiB the run added to the process's peak resident memory, new
    tokens per request)."""
    texts: dict[int, str] = {}
    new_tokens: dict[int, int] = {}

    def keep(index: int, response: Response) -> None:
        texts[index] = response.text or ""
        new_tokens[index] = response.usage.output_tokens

    _reset_peak()
    resident = _rss_mib("VmRSS")
    began, cpu = time.perf_counter(), time.process_time()
    adapter.generate(requests, keep)
    seconds = (time.perf_counter() - began, time.process_time() - cpu)
    order = range(len(requests))
    return [texts[i] for i in order], seconds, _rss_mib("VmHWM") - resident, [new_tokens[i] for i in order]


def padded_batch_steps(prompt_lengths: list[int], new_tokens: list[int], batch_size: int) -> int:
    """Decoding steps of a batcher that waits for each batch's longest answer, with lm-eval's
    batches (requests sorted by prompt length, longest first): a lower bound for lm-eval's side.
    Counted as evalboard counts its own: the prompt's pass gives the first token, not counted."""
    order = sorted(range(len(prompt_lengths)), key=lambda i: -prompt_lengths[i])
    return sum(max(0, max(new_tokens[i] for i in order[b : b + batch_size]) - 1) for b in range(0, len(order), batch_size))


def run_reference(lm: Any, adapter: Any, requests: list[GenerateRequest]) -> tuple[list[str], tuple[float, float]]:
    from lm_eval.api.instance import Instance

    instances = [
        Instance(request_type="generate_until", doc={}, idx=0,
                 arguments=(adapter.render(r.context), {"until": list(r.params.stop), "do_sample": False,
                                                         "max_gen_toks": r.params.max_new_tokens}))
        for r in requests
    ]
    began, cpu = time.perf_counter(), time.process_time()
    texts = lm.generate_until(instances, disable_tqdm=True)
    return list(texts), (time.perf_counter() - began, time.process_time() - cpu)


def first_difference(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--tasks", default="gsm8k_cot,ifeval,humaneval")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="cap every task's token limit")
    parser.add_argument("--model", default=str(packaged_model_dir("smollm2-135m-instruct")))
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="local task data, as evalboard's --data-dir (bbh_cot_fewshot: DIR/bbh_cot_fewshot/<subtask>/test.jsonl)")
    args = parser.parse_args()

    import torch
    from lm_eval.models.huggingface import HFLM

    adapter = load_adapter(f"hf:{args.model}", AdapterSettings(batch_size=args.batch_size, device="cpu",
                                                               dtype="float32"))
    with torch.inference_mode():  # the model's own footprint: loaded and run once
        adapter.model(torch.tensor([adapter.encode("Hello, world.")]))
    footprint = _rss_mib("VmRSS")
    lm = HFLM(pretrained=args.model, dtype="float32", batch_size=args.batch_size, device="cpu")
    rows = []
    for name in args.tasks.split(","):
        requests = task_requests(name, args.limit, adapter.capabilities, args.max_new_tokens, args.data_dir)
        adapter.generator.stats = GenerationStats()  # this task's counters only
        ours, ours_s, added, new_tokens = run_ours(adapter, requests)
        usage = adapter.generator.stats.summary()
        prompt_lengths = [len(adapter.encode(adapter.render(r.context))) for r in requests]
        padded_steps = padded_batch_steps(prompt_lengths, new_tokens, args.batch_size)
        reference, reference_s = run_reference(lm, adapter, requests)
        same = sum(a == b for a, b in zip(ours, reference))
        rows.append((name, len(requests), same, ours_s, reference_s, usage["generation_token_efficiency"],
                     usage["generation_mean_rows"], (footprint + added) / footprint))
        print(f"{name}: evalboard {ours_s[0]:.1f}s ({ours_s[1]:.1f}s CPU), lm-eval {reference_s[0]:.1f}s "
              f"({reference_s[1]:.1f}s CPU), {same}/{len(requests)} texts identical; decoding passes: evalboard "
              f"{usage['generation_decode_passes']}, batches waiting on their longest answer {padded_steps}; prompt "
              f"tokens forwarded: evalboard {usage['generation_prompt_tokens_forwarded']}, every prompt in full "
              f"{sum(prompt_lengths)}", flush=True)
        for i, (a, b) in enumerate(zip(ours, reference)):
            if a != b:
                at = first_difference(a, b)
                print(f"  item {i}: texts differ from character {at} (evalboard {len(a)} chars, lm-eval {len(b)}): "
                      f"{a[max(0, at - 20):at + 30]!r} vs {b[max(0, at - 20):at + 30]!r}")
    print(f"\nSmolLM2-135M-Instruct (float32), first {args.limit} items, batch size {args.batch_size}, greedy, "
          f"{os.cpu_count()} CPU cores; model footprint {footprint:.0f} MiB (loaded, one pass)\n")
    print("wall: seconds; CPU: the process's CPU seconds (the steadier measure on a shared machine)\n")
    print(f"{'task':<12} {'items':>5} {'same text':>9} {'ours wall/CPU':>14} {'lm-eval wall/CPU':>17} "
          f"{'speed-up wall/CPU':>18} {'token eff.':>10} {'mean rows':>9} {'memory':>7}")
    for name, n, same, ours_s, ref_s, efficiency, mean_rows, memory in rows:
        speed = f"{ref_s[0] / ours_s[0]:.2f}x / {ref_s[1] / ours_s[1]:.2f}x"
        print(f"{name:<12} {n:>5} {same:>9} {ours_s[0]:>7.1f}/{ours_s[1]:<6.1f} {ref_s[0]:>9.1f}/{ref_s[1]:<7.1f} "
              f"{speed:>18} {efficiency:>10.3f} {mean_rows:>9.2f} {memory:>6.2f}x")


if __name__ == "__main__":
    main()
