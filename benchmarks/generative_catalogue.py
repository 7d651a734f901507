"""SmolLM2-135M-Instruct on the generative catalogue, and evalboard vs lm-eval (hf backend) on
the same items for BBH CoT and MATH Level 5: per-item scores compared, wall-time ratio printed.

    .venv/bin/python benchmarks/generative_catalogue.py [--limit 50] [--max-new-tokens N]
        [--tasks minerva_math500,leaderboard_math_hard,bbh_cot_fewshot,...]
        [--compare bbh_cot_fewshot_<subtask>,leaderboard_math_hard] [--math-subject algebra]
        [--bbh DIR] [--gsm8k-train FILE] [--batch-size 8]

--bbh: BIG-Bench-Hard's bbh/ folder (one <subtask>.jsonl each); --gsm8k-train: GSM8K's train.jsonl
(gsm8k's 5-shot examples); without them those tasks are skipped (no package ships them).
--max-new-tokens caps generation on both sides alike (the tasks' own limits otherwise).
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
from evalboard.models.default_model import packaged_model_dir  # noqa: E402
from evalboard.taskdef.lm_eval_source import task_dir  # noqa: E402
from lm_eval_reference import _task_yaml, _write_jsonl  # noqa: E402

BBH_COT = "bbh_cot_fewshot"
MATH_HARD = "leaderboard_math_hard"


def data_dir(root: Path, bbh: Path | None, gsm8k_train: Path | None) -> Path:
    if bbh:
        for path in sorted(bbh.glob("*.jsonl")):
            (root / BBH_COT / path.stem).mkdir(parents=True)
            (root / BBH_COT / path.stem / "test.jsonl").symlink_to(path.resolve())
    if gsm8k_train:
        (root / "gsm8k").mkdir()
        (root / "gsm8k" / "train.jsonl").symlink_to(gsm8k_train.resolve())
    return root


def one_subject_of_math_hard(limit: int, subject: str, directory: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A --data-dir holding only the first `limit` Level 5 items of one subject: evalboard's group
    limits each subject, lm-eval's leaderboard_math_<subject>_hard is one subject."""
    from evalboard.taskdef.prepared import TaskOptions, prepare_task
    from evalboard.taskdef.registry import discover_tasks

    docs = [d for d in prepare_task(discover_tasks()[MATH_HARD], TaskOptions(limit=limit)).docs
            if d["subject"] == subject]
    rows = [{"problem": d["problem"], "solution": d["solution"], "level": d["level"], "type": subject} for d in docs]
    (directory / MATH_HARD).mkdir(parents=True)
    _write_jsonl(directory / MATH_HARD / "test.jsonl", rows)
    return directory, rows


def reference_task(task: str, rows: list[dict[str, Any]], directory: Path) -> tuple[str, str]:
    """lm-eval's own task file for one BBH subtask or one MATH subject, redirected to these rows;
    (its name, its primary result key)."""
    if task.startswith(f"{BBH_COT}_"):
        include = task_dir("bbh", "cot_fewshot") / f"{task.removeprefix(f'{BBH_COT}_')}.yaml"
        key = "exact_match,get-answer"
    else:
        include = task_dir("leaderboard", "math") / f"math_{rows[0]['type']}.yaml"
        key = "exact_match,none"
    name = f"ref_{task}"
    _task_yaml(directory, name, include, {"test": _write_jsonl(directory / f"{name}.jsonl", rows)})
    return name, key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--tasks", default="minerva_math500,leaderboard_math_hard,minerva_math,bbh_cot_fewshot,"
                                           "gsm8k,mbpp,drop_1k")
    parser.add_argument("--compare", default="bbh_cot_fewshot_logical_deduction_three_objects,leaderboard_math_hard",
                        help="bbh_cot_fewshot_<subtask> and/or leaderboard_math_hard (one subject: --math-subject)")
    parser.add_argument("--math-subject", default="algebra")
    parser.add_argument("--bbh", type=Path)
    parser.add_argument("--gsm8k-train", type=Path)
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--chat", action="store_true", help="also with the chat template")
    args = parser.parse_args()
    model = packaged_model_dir("smollm2-135m-instruct")
    with tempfile.TemporaryDirectory() as tmp:
        local = data_dir(Path(tmp) / "data", args.bbh, args.gsm8k_train)
        for task in filter(None, args.tasks.split(",")):
            if (task == "bbh_cot_fewshot" and not args.bbh) or (task == "gsm8k" and not args.gsm8k_train):
                print(f"{task}: skipped (its data is not in any package; see --help)")
                continue
            for chat in (False, True) if args.chat else (False,):
                extra: dict[str, Any] = {"num_fewshot": 0} if task == "drop_1k" else {}  # train is Hub-only
                began = time.perf_counter()
                record = evalboard.evaluate(f"hf:{model}", task, limit=args.limit, batch_size=args.batch_size,
                                            max_new_tokens=args.max_new_tokens, data_dir=local, cache=False,
                                            output_dir=None, allow_code_execution=True,
                                            apply_chat_template=chat, **extra)
                seconds = time.perf_counter() - began
                result = record.tasks[task]
                figures = ", ".join(f"{k} {v.value:.3f}" for k, v in sorted(result.metrics.items())
                                    if not k.endswith("_macro") and "stderr" not in k)
                cut = sum(bool(r.hit_max_new_tokens) for s in record.samples[task] for r in s.responses)
                print(f"{task}{' (chat template)' if chat else ''}: n={result.n_items} {figures}; "
                      f"{cut} cut off at max_new_tokens; {seconds:.0f}s", flush=True)
        for task in filter(None, args.compare.split(",")):
            if task.startswith(BBH_COT) and not args.bbh:
                print(f"{task}: not compared (BBH's items are not in any package; see --help)")
                continue
            compare(task, model, args, local, Path(tmp))


def compare(task: str, model: Path, args: argparse.Namespace, local: Path, tmp: Path) -> None:
    """One BBH subtask (bbh_cot_fewshot_<subtask>) or one MATH Level 5 subject on both sides: the
    first --limit items, each side's whole evaluation (generation, filters, scoring) timed."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    if task.startswith(f"{BBH_COT}_"):
        data, rows = local, [json.loads(line) for line in (args.bbh / f"{task.removeprefix(f'{BBH_COT}_')}.jsonl")
                             .read_text(encoding="utf-8").splitlines() if line.strip()][:args.limit]
        primary = "exact_match,get-answer"
    elif task == MATH_HARD:
        data, rows = one_subject_of_math_hard(args.limit, args.math_subject, tmp / "math_one")
        primary = "exact_match"  # math-verify, as lm-eval 0.4.13's leaderboard_math_<subject>_hard
    else:
        raise SystemExit(f"--compare takes {BBH_COT}_<subtask> or {MATH_HARD}, not {task!r}")
    began = time.perf_counter()
    ours = evalboard.evaluate(f"hf:{model}", task, limit=args.limit, batch_size=args.batch_size, data_dir=data,
                              max_new_tokens=args.max_new_tokens, cache=False, output_dir=None)
    ours_s = time.perf_counter() - began
    name, key = reference_task(task, rows, tmp)
    gen_kwargs = f"max_gen_toks={args.max_new_tokens}" if args.max_new_tokens else None
    began = time.perf_counter()
    reference = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={model},dtype=float32", tasks=[name], batch_size=args.batch_size,
        device="cpu", log_samples=True, task_manager=TaskManager(include_path=str(tmp)), gen_kwargs=gen_kwargs)
    reference_s = time.perf_counter() - began
    theirs = {s["doc_id"]: s for s in reference["samples"][name]}
    samples = ours.samples[task]
    assert len(samples) == len(rows) == len(theirs), (len(samples), len(rows), len(theirs))
    same_text = sum(s.responses[0].text == theirs[i]["resps"][0][0] for i, s in enumerate(samples))
    same_score = sum(float(s.scores[primary]) == float(theirs[i][key.split(",")[0]]) for i, s in enumerate(samples))
    print(f"\n{task} vs lm-eval ({name}), first {len(rows)} items, batch {args.batch_size}, "
          f"{os.cpu_count()} cores: evalboard {ours_s:.0f}s, lm-eval {reference_s:.0f}s, "
          f"ratio lm-eval/evalboard {reference_s / ours_s:.2f}; same text {same_text}/{len(rows)}, "
          f"same score {same_score}/{len(rows)}; {primary} {ours.metric(task, primary):.3f} vs "
          f"{reference['results'][name][key]:.3f}", flush=True)


if __name__ == "__main__":
    main()
