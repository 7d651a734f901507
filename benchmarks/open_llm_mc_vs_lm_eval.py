"""The Open LLM Leaderboard multiple-choice tasks: evalboard vs lm-eval (hf backend) on the same
items and model, side by side in one process. Prints, per task, evalboard's metrics ± stderr, the
largest per-choice |Δ loglikelihood| against lm-eval, whether every per-item result agrees, and
the wall-time ratio (evalboard / lm-eval).

    nice -n 10 .venv/bin/python benchmarks/open_llm_mc_vs_lm_eval.py [--limit 300] [--bbh-limit 20]
        [--tasks gpqa,mmlu_pro,bbh,musr,arc25,catalogue] [--batch-size 8] [--json out.json]

SmolLM2-135M-Instruct (the packaged default model). GPQA Diamond reads its package; MMLU-Pro, BBH,
MuSR (the source's 30 viewer samples: the 756 items are not on these machines) and ARC-Challenge's
train split (for 25-shot) read ../shared/data through --data-dir. `catalogue`: Winogrande, PIQA,
BoolQ, OpenBookQA, SciQ, CommonsenseQA, Social IQa (their packaged items) and TruthfulQA MC1/MC2
(../shared/data's v0 copy, when it is there), 0-shot. HellaSwag's and Winogrande's train splits are
not here, so their v1 variants are not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import evalboard  # noqa: E402  (sets OMP_WAIT_POLICY before torch loads)
from catalogue_reference import TASKS as CATALOGUE  # noqa: E402
from catalogue_reference import write_task, write_truthfulqa_data_dir  # noqa: E402
from evalboard.models.default_model import packaged_model_dir  # noqa: E402
from evalboard.taskdef.data import load_split  # noqa: E402
from evalboard.taskdef.prepared import TaskOptions, prepare_task  # noqa: E402
from evalboard.taskdef.registry import discover_tasks  # noqa: E402
from lm_eval_reference import _arc_row, _write_jsonl, per_sample_loglikelihoods, run_lm_eval  # noqa: E402
from open_llm_reference import (  # noqa: E402
    SHARED_DATA,
    arc_hub_rows,
    link_data_dir,
    musr_hub_rows,
    write_bbh,
    write_gpqa,
    write_mmlu_pro,
    write_musr,
    write_with_train,
)


def plan(group: str, limit: int, bbh_limit: int, tmp: Path, data_dir: Path) -> tuple[dict[str, str], dict[str, int], int | None]:
    """(our task -> lm-eval task written in tmp, our task -> item count, lm-eval's --num_fewshot)."""
    specs = discover_tasks()
    if group == "gpqa":
        spec = specs["leaderboard_gpqa_diamond"]
        raw = load_split(spec.name, spec.data, "train", "offline", None).rows[:limit]
        return {spec.name: write_gpqa(tmp, raw)}, {spec.name: len(raw)}, None
    if group == "mmlu_pro":
        prepared = prepare_task(specs["leaderboard_mmlu_pro"], TaskOptions(limit=limit, data_dir=data_dir))
        return ({"leaderboard_mmlu_pro": write_mmlu_pro(tmp, prepared.docs, prepared.fewshot_pool)},
                {"leaderboard_mmlu_pro": len(prepared.docs)}, None)
    if group == "bbh":
        names, counts = {}, {}
        for task in sorted(n for n in specs if n.startswith("leaderboard_bbh_")):
            docs = prepare_task(specs[task], TaskOptions(limit=bbh_limit, data_dir=data_dir)).docs
            names[task], counts[task] = write_bbh(tmp, task.removeprefix("leaderboard_bbh_"), docs), len(docs)
        return names, counts, None
    if group == "musr":
        names, counts = {}, {}
        for task in sorted(n for n in specs if n.startswith("leaderboard_musr_")):
            rows = musr_hub_rows(task.removeprefix("leaderboard_musr_"))[:limit]
            names[task], counts[task] = write_musr(tmp, task.removeprefix("leaderboard_musr_"), rows), len(rows)
        return names, counts, None
    if group == "arc25":
        train = arc_hub_rows(SHARED_DATA / "arc" / "ARC-Challenge" / "ARC-Challenge-Train.jsonl")
        (data_dir / "arc_challenge_25shot").mkdir(parents=True, exist_ok=True)
        _write_jsonl(data_dir / "arc_challenge_25shot" / "train.jsonl", train)
        docs = prepare_task(specs["arc_challenge_25shot"], TaskOptions(limit=limit, data_dir=data_dir)).docs
        name = write_with_train(tmp, "ref_arc_c25", "arc/arc_challenge.yaml", "test", [_arc_row(d) for d in docs], train)
        return {"arc_challenge_25shot": name}, {"arc_challenge_25shot": len(docs)}, 25
    if group == "catalogue":
        truthfulqa = SHARED_DATA / "truthfulqa" / "data" / "v0" / "mc_task.json"
        if truthfulqa.is_file():
            write_truthfulqa_data_dir(data_dir, truthfulqa)
        names, counts = {}, {}
        for task in CATALOGUE:
            if task.startswith("truthfulqa") and not truthfulqa.is_file():
                continue
            docs = prepare_task(specs[task], TaskOptions(limit=limit, data_dir=data_dir)).docs
            names[task], counts[task] = write_task(tmp, task, docs), len(docs)
        return names, counts, None
    raise SystemExit(f"unknown group {group}")


def measure(group: str, model: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data_dir = link_data_dir(tmp / "data")
        names, counts, shots = plan(group, args.limit, args.bbh_limit, tmp, data_dir)
        began = time.perf_counter()
        ours = {task: evalboard.evaluate(f"hf:{model}", [task], limit=counts[task], batch_size=args.batch_size,
                                         output_dir=None, cache=False, data_dir=data_dir) for task in names}
        ours_s = time.perf_counter() - began
        began = time.perf_counter()
        reference = run_lm_eval(model, tmp, list(names.values()), num_fewshot=shots, batch_size=args.batch_size)
        reference_s = time.perf_counter() - began
    rows = []
    for task, name in names.items():
        record = ours[task]
        theirs = per_sample_loglikelihoods(reference, name)
        ref_samples = {s["doc_id"]: s for s in reference["samples"][name]}
        worst, same = 0.0, True
        for sample in record.samples[task]:
            values = [r.logprob for r in sample.responses]
            worst = max(worst, *(abs(a - b) for a, b in zip(values, theirs[sample.index])))
            # 0/1 accuracies are equal; MC2's probability mass moves with the loglikelihoods' last digits
            same &= all(abs(sample.scores[m] - ref_samples[sample.index][m]) <= 1e-4 for m in ("acc", "acc_norm")
                        if m in ref_samples[sample.index])
        metrics = {m: [record.tasks[task].metrics[m].value, record.tasks[task].metrics[m].stderr]
                   for m in ("acc", "acc_norm") if m in record.tasks[task].metrics}
        rows.append({"task": task, "items": counts[task], "metrics": metrics, "max_abs_dll": worst,
                     "same_per_item": same})
    rows.append({"group": group, "evalboard_s": ours_s, "lm_eval_s": reference_s, "ratio": ours_s / reference_s})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--bbh-limit", type=int, default=20, help="items per BBH subtask (24 subtasks)")
    parser.add_argument("--tasks", default="gpqa,mmlu_pro,bbh,musr,arc25,catalogue")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here, after each group")
    args = parser.parse_args()
    model = packaged_model_dir("smollm2-135m-instruct")
    every: list[dict[str, Any]] = []
    for group in args.tasks.split(","):
        rows = measure(group, model, args)
        every.extend(rows)
        for row in rows:
            if "task" in row:
                shown = "  ".join(f"{m} {v:.4f} ± {s:.4f}" for m, (v, s) in row["metrics"].items())
                print(f"{row['task']:50s} n={row['items']:4d}  {shown}  max|Δll| {row['max_abs_dll']:.2e}  "
                      f"per-item {'same' if row['same_per_item'] else 'DIFFERENT'}", flush=True)
            else:
                print(f"== {row['group']}: evalboard {row['evalboard_s']:.1f}s, lm-eval {row['lm_eval_s']:.1f}s, "
                      f"ratio {row['ratio']:.2f}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(every, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
