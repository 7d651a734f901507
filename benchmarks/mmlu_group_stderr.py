"""MMLU's group standard error on the first N test items (in the split's order, so the first few
subjects), as evalboard reports it (lm-eval's pooled stderr) beside the plain stderr over all items.

    .venv/bin/python benchmarks/mmlu_group_stderr.py [--items 300] [--model hf:PATH]

Each subject is its own task (`mmlu_<subject>`), evaluated on its share of the first N items; the
group figures are pooled from them exactly as the evaluator pools a group's subtasks. Default
model: SmolLM2-135M-Instruct (float32), 5-shot.
"""

from __future__ import annotations

import argparse
import os
from collections import Counter

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import evalboard  # noqa: E402  (sets the thread and MKL settings before torch loads)
from evalboard.models.default_model import DEFAULT_MODEL_SPEC  # noqa: E402
from evalboard.stats import mean_stderr, pooled_stderr  # noqa: E402
from evalboard.taskdef.prepared import TaskOptions, prepare_task  # noqa: E402
from evalboard.taskdef.registry import discover_tasks  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--model", default=DEFAULT_MODEL_SPEC)
    args = parser.parse_args()
    docs = prepare_task(discover_tasks()["mmlu"], TaskOptions(num_fewshot=0)).docs[: args.items]
    per_subject = Counter(str(doc["subject"]) for doc in docs)
    scores: list[float] = []
    stderrs, sizes = [], []
    for subject, count in per_subject.items():
        task = f"mmlu_{subject}"
        record = evalboard.evaluate(args.model, task, limit=count, output_dir=None)
        acc = record.tasks[task].metrics["acc"]
        print(f"{task:<28} n={acc.n:<4} acc={acc.value:.4f} ± {acc.stderr:.5f}")
        scores += [sample.scores["acc"] for sample in record.load_samples(task)]
        stderrs.append(acc.stderr)
        sizes.append(acc.n)
    value = sum(scores) / len(scores)
    print(f"mmlu, first {len(scores)} items: acc {value:.4f}; pooled stderr (lm-eval's, reported) "
          f"{pooled_stderr(stderrs, sizes):.5f}; plain stderr over all items {mean_stderr(scores):.5f}")


if __name__ == "__main__":
    main()
