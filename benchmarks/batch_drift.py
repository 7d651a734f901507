"""How much a request's loglikelihood moves with the batch size, evalboard's and lm-eval's: the
same model and items scored at several batch sizes, each compared with batch size 1.

    .venv/bin/python benchmarks/batch_drift.py [--task arc_easy] [--limit 200] [--batch-sizes 1,3,8] [--lm-eval]

Prints, per batch size, how many choices are not bit-identical to batch size 1 and the largest
|Δ loglikelihood|. Defaults: SmolLM2-135M-Instruct (float32), the first 200 items of ARC-Easy.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import evalboard  # noqa: E402  (sets the thread and MKL settings before torch loads)
from evalboard.models.default_model import packaged_model_dir  # noqa: E402


def drift(values: list[float], reference: list[float]) -> tuple[int, float]:
    """(choices not bit-identical, max |difference|)."""
    assert len(values) == len(reference)
    return sum(a != b for a, b in zip(values, reference)), max(abs(a - b) for a, b in zip(values, reference))


def ours(model: Path, task: str, limit: int, batch_size: int) -> list[float]:
    record = evalboard.evaluate(f"hf:{model}", task, limit=limit, batch_size=batch_size, output_dir=None, cache=False)
    return [r.logprob for s in record.load_samples(task) for r in s.responses if r.logprob is not None]


def lm_eval(model: Path, task: str, limit: int, batch_size: int) -> list[float]:
    from hf_loglikelihood import reference_tasks
    from lm_eval_reference import per_sample_loglikelihoods, run_lm_eval

    with tempfile.TemporaryDirectory() as tmp:
        names, shots = reference_tasks(task, limit, Path(tmp))
        results = run_lm_eval(model, Path(tmp), names, num_fewshot=shots, batch_size=batch_size)
    return [v for name in names for _, values in sorted(per_sample_loglikelihoods(results, name).items())
            for v in values]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="arc_easy")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--batch-sizes", default="1,3,8")
    parser.add_argument("--lm-eval", action="store_true", help="also measure lm-eval's own drift")
    args = parser.parse_args()
    model = packaged_model_dir("smollm2-135m-instruct")
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    harnesses = [("evalboard", ours)] + ([("lm-eval", lm_eval)] if args.lm_eval else [])
    print(f"SmolLM2-135M-Instruct, {args.task}, first {args.limit} items, MKL_CBWR={os.environ.get('MKL_CBWR')}")
    for name, score in harnesses:
        reference = None
        for size in sizes:
            began = time.perf_counter()
            values = score(model, args.task, args.limit, size)
            seconds = time.perf_counter() - began
            if reference is None:
                reference = values
                print(f"{name:<10} batch {size}: {len(values)} choices, {seconds:.1f}s", flush=True)
                continue
            differ, largest = drift(values, reference)
            print(f"{name:<10} batch {size}: {differ} of {len(values)} choices differ from batch {sizes[0]}, "
                  f"max |Δ| {largest:.2e}, {seconds:.1f}s", flush=True)


if __name__ == "__main__":
    main()
