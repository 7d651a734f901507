"""evalboard vs lm-eval (hf backend), side by side in one process: the same model, the same items,
the same batch size. Checks that the scores agree and prints wall-time ratios.

    .venv/bin/python benchmarks/hf_loglikelihood.py [--limit 300] [--tasks arc_easy,...] [--batch-size 8]

Defaults: SmolLM2-135M-Instruct (the packaged default model), the first 300 items of ARC-Easy,
ARC-Challenge, HellaSwag (0-shot) and MMLU (5-shot from dev), batch size 8.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import evalboard  # noqa: E402  (sets OMP_WAIT_POLICY before torch loads)
from evalboard.models.default_model import packaged_model_dir  # noqa: E402
from evalboard.taskdef.data import load_split  # noqa: E402
from evalboard.taskdef.prepared import TaskOptions, prepare_task  # noqa: E402
from evalboard.taskdef.registry import discover_tasks  # noqa: E402
from lm_eval_reference import (  # noqa: E402
    per_sample_loglikelihoods,
    run_lm_eval,
    write_arc,
    write_hellaswag,
    write_mmlu_subject,
)


def reference_tasks(task: str, limit: int, directory: Path) -> tuple[list[str], int | None]:
    """lm-eval task names reproducing our `task` on its first `limit` items (and few-shot count)."""
    spec = discover_tasks()[task]
    prepared = prepare_task(spec, TaskOptions(limit=limit))
    if task.startswith("arc"):
        return [write_arc(directory, prepared.docs, f"ref_{task}")], 0
    if task == "hellaswag":
        raw = load_split("hellaswag", spec.data, "validation", "offline", None).rows[:limit]
        return [write_hellaswag(directory, raw)], 0
    names = []
    for subject in dict.fromkeys(d["subject"] for d in prepared.docs):
        test = [d for d in prepared.docs if d["subject"] == subject]
        dev = [d for d in prepared.fewshot_pool if d["subject"] == subject]
        names.append(write_mmlu_subject(directory, subject, test, dev))
    return names, prepared.num_fewshot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--group-limit", type=int, default=5, help="items per subject of a group (mmlu: 57 x 5)")
    parser.add_argument("--tasks", default="arc_easy,arc_challenge,hellaswag,mmlu")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    model = packaged_model_dir("smollm2-135m-instruct")
    rows = []
    for task in args.tasks.split(","):
        limit = args.group_limit if discover_tasks()[task].group_field else args.limit  # a group's is per subject
        with tempfile.TemporaryDirectory() as tmp:
            names, shots = reference_tasks(task, limit, Path(tmp))
            began = time.perf_counter()
            ours = evalboard.evaluate(f"hf:{model}", task, limit=limit, batch_size=args.batch_size,
                                      output_dir=None, cache=False)
            ours_s = time.perf_counter() - began
            began = time.perf_counter()
            reference = run_lm_eval(model, Path(tmp), names, num_fewshot=shots, batch_size=args.batch_size)
            reference_s = time.perf_counter() - began
        ll_ours = [r.logprob for s in ours.samples[task] for r in s.responses]
        ll_ref = [v for name in names for _, values in sorted(per_sample_loglikelihoods(reference, name).items())
                  for v in values]
        sizes = [len(per_sample_loglikelihoods(reference, n)) for n in names]
        ref_acc = sum(reference["results"][n]["acc,none"] * k for n, k in zip(names, sizes)) / sum(sizes)
        rows.append((task, ours.metric(task, "acc"), ours.metric(task, "acc_norm"), ref_acc,
                     max(abs(a - b) for a, b in zip(ll_ours, ll_ref)), ours_s, reference_s,
                     (ours.usage.adapter or {}).get("token_efficiency")))
        print(f"{task}: evalboard {ours_s:.1f}s, lm-eval {reference_s:.1f}s", flush=True)
    print(f"\nSmolLM2-135M-Instruct, first {args.limit} items, batch size {args.batch_size}, "
          f"{os.cpu_count()} CPU cores\n")
    print(f"{'task':<14} {'acc':>6} {'acc_norm':>8} {'lm-eval acc':>11} {'max |Δll|':>10} "
          f"{'evalboard s':>11} {'lm-eval s':>9} {'speed-up':>8} {'token eff.':>10}")
    for task, acc, acc_norm, ref_acc, diff, ours_s, ref_s, efficiency in rows:
        print(f"{task:<14} {acc:>6.3f} {acc_norm:>8.3f} {ref_acc:>11.3f} {diff:>10.1e} {ours_s:>11.1f} "
              f"{ref_s:>9.1f} {ref_s / ours_s:>7.2f}x {efficiency:>10.3f}")


if __name__ == "__main__":
    main()
