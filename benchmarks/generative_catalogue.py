"""SmolLM2-135M-Instruct on the generative catalogue, and evalboard vs lm-eval (hf backend) on
the same items for BBH CoT and MATH Level 5: per-item scores compared, wall-time ratio printed.

    .venv/bin/python benchmarks/generative_catalogue.py [--limit 50] [--max-new-tokens N]
        [--tasks minerva_math500,leaderboard_math_hard,bbh_cot_fewshot,...] [--compare bbh_cot_fewshot,...]
        [--bbh DIR] [--gsm8k-train FILE] [--batch-size 8]

--bbh: BIG-Bench-Hard's bbh/ folder (one <subtask>.jsonl each); --gsm8k-train: GSM8K's train.jsonl
(gsm8k's 5-shot examples); without them those tasks are skipped (no package ships them).
--max-new-tokens caps generation on both sides alike (the tasks' own limits otherwise).
"""

from __future__ import annotations

import argparse
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

PRIMARY_KEYS = {"leaderboard_math_hard": "exact_match", "bbh_cot_fewshot": "exact_match,get-answer"}


def data_dir(root: Path, bbh: Path | None, gsm8k_train: Path | None) -> Path:
    if bbh:
        for path in sorted(bbh.glob("*.jsonl")):
            (root / "bbh_cot_fewshot" / path.stem).mkdir(parents=True)
            (root / "bbh_cot_fewshot" / path.stem / "test.jsonl").symlink_to(path.resolve())
    if gsm8k_train:
        (root / "gsm8k").mkdir()
        (root / "gsm8k" / "train.jsonl").symlink_to(gsm8k_train.resolve())
    return root


def reference_task(task: str, docs: list[dict[str, Any]], directory: Path) -> tuple[str, str]:
    """lm-eval's task file for these documents (one subtask: the first N items are one subtask's)."""
    if task == "bbh_cot_fewshot":
        (subtask,) = {d["subtask"] for d in docs}
        include = task_dir("bbh", "cot_fewshot") / f"{subtask}.yaml"
        rows = [{"input": d["input"], "target": d["target"]} for d in docs]
        key = "exact_match,get-answer"
    else:
        (subject,) = {d["subject"] for d in docs}
        include = task_dir("leaderboard", "math") / f"math_{subject}.yaml"
        rows = [{"problem": d["problem"], "solution": d["solution"], "level": d["level"], "type": subject} for d in docs]
        key = "exact_match,none"
    data = _write_jsonl(directory / f"ref_{task}.jsonl", rows)
    _task_yaml(directory, f"ref_{task}", include, {"test": data})
    return f"ref_{task}", key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--tasks", default="minerva_math500,leaderboard_math_hard,minerva_math,bbh_cot_fewshot,"
                                           "gsm8k,mbpp,drop_1k")
    parser.add_argument("--compare", default="bbh_cot_fewshot,leaderboard_math_hard")
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
            if task == "bbh_cot_fewshot" and not args.bbh:
                continue
            compare(task, model, args, local, Path(tmp))


def compare(task: str, model: Path, args: argparse.Namespace, local: Path, tmp: Path) -> None:
    import lm_eval
    from lm_eval.tasks import TaskManager

    began = time.perf_counter()
    ours = evalboard.evaluate(f"hf:{model}", task, limit=args.limit, batch_size=args.batch_size, data_dir=local,
                              max_new_tokens=args.max_new_tokens, cache=False, output_dir=None)
    ours_s = time.perf_counter() - began
    from evalboard.taskdef.prepared import TaskOptions, prepare_task
    from evalboard.taskdef.registry import discover_tasks

    prepared = prepare_task(discover_tasks()[task], TaskOptions(limit=args.limit, data_dir=local))
    name, key = reference_task(task, prepared.docs, tmp)
    gen_kwargs = f"max_gen_toks={args.max_new_tokens}" if args.max_new_tokens else None
    began = time.perf_counter()
    reference = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={model},dtype=float32", tasks=[name], batch_size=args.batch_size,
        device="cpu", log_samples=True, task_manager=TaskManager(include_path=str(tmp)), gen_kwargs=gen_kwargs)
    reference_s = time.perf_counter() - began
    theirs = {s["doc_id"]: s for s in reference["samples"][name]}
    primary = PRIMARY_KEYS[task]
    same_text = sum(s.responses[0].text == theirs[i]["filtered_resps"][0] or s.responses[0].text == theirs[i]["resps"][0][0]
                    for i, s in enumerate(ours.samples[task]))
    same_score = sum(float(s.scores[primary]) == float(theirs[i][key.split(",")[0]])
                     for i, s in enumerate(ours.samples[task]))
    print(f"\n{task} vs lm-eval ({name}), first {len(prepared.docs)} items, batch {args.batch_size}, "
          f"{os.cpu_count()} cores: evalboard {ours_s:.0f}s, lm-eval {reference_s:.0f}s, "
          f"ratio lm-eval/evalboard {reference_s / ours_s:.2f}; same text {same_text}/{len(prepared.docs)}, "
          f"same score {same_score}/{len(prepared.docs)}; {primary} {ours.metric(task, primary):.3f} vs "
          f"{reference['results'][name][key]:.3f}", flush=True)


if __name__ == "__main__":
    main()
