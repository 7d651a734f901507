"""Run lm-eval itself (hf backend) on exactly the items evalboard evaluates, for parity tests.

lm-eval's own task files are included and only their dataset is redirected to local JSON files
written from evalboard's documents (in the Hub's schema), so lm-eval's prompts, preprocessing
and metrics are the ones under test, not copies of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LETTERS = "ABCDEFGH"


def _arc_row(doc: dict[str, Any]) -> dict[str, Any]:
    labels = list(LETTERS[: len(doc["choices"])])
    return {"id": doc["id"], "question": doc["question"],
            "choices": {"text": doc["choices"], "label": labels}, "answerKey": labels[doc["answer"]]}


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path


def _task_yaml(directory: Path, name: str, include: Path, files: dict[str, Path], extra: str = "") -> None:
    data_files = "\n".join(f"    {split}: {path}" for split, path in files.items())
    (directory / f"{name}.yaml").write_text(
        f"include: {include}\ntask: {name}\ntag: []\ndataset_path: json\ndataset_name: null\n"
        f"dataset_kwargs:\n  data_files:\n{data_files}\n"
        f"training_split: null\nvalidation_split: null\ntest_split: test\n{extra}",
        encoding="utf-8",
    )


def lm_eval_task_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent


def write_arc(directory: Path, docs: list[dict[str, Any]], name: str = "ref_arc_easy") -> str:
    data = _write_jsonl(directory / f"{name}.jsonl", [_arc_row(d) for d in docs])
    _task_yaml(directory, name, lm_eval_task_dir() / "arc" / "arc_easy.yaml", {"test": data})
    return name


def write_hellaswag(directory: Path, raw_rows: list[dict[str, Any]], name: str = "ref_hellaswag") -> str:
    """HellaSwag goes in raw (ctx_a, ctx_b, endings...): lm-eval's own preprocessing runs."""
    data = _write_jsonl(directory / f"{name}.jsonl", raw_rows)
    utils = lm_eval_task_dir() / "hellaswag" / "utils.py"
    (directory / f"{name}_utils.py").write_text(utils.read_text(encoding="utf-8"), encoding="utf-8")
    _task_yaml(directory, name, lm_eval_task_dir() / "hellaswag" / "hellaswag.yaml", {"test": data},
               extra=f"process_docs: !function {name}_utils.process_docs\n")
    return name


def write_mmlu_subject(directory: Path, subject: str, test_docs: list[dict[str, Any]],
                       dev_docs: list[dict[str, Any]]) -> str:
    name = f"ref_mmlu_{subject}"
    keep = ("question", "subject", "choices", "answer")
    test = _write_jsonl(directory / f"{name}_test.jsonl", [{k: d[k] for k in keep} for d in test_docs])
    dev = _write_jsonl(directory / f"{name}_dev.jsonl", [{k: d[k] for k in keep} for d in dev_docs])
    description = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\\n\\n"
    _task_yaml(directory, name, lm_eval_task_dir() / "mmlu" / "default" / "_default_template_yaml",
               {"test": test, "dev": dev}, extra=f'description: "{description}"\nfewshot_split: dev\n')
    return name


def write_wikitext(directory: Path, pages: list[str], name: str = "ref_wikitext") -> str:
    """lm-eval's wikitext task (its detokeniser and word/byte counting) on these raw pages."""
    data = _write_jsonl(directory / f"{name}.jsonl", [{"page": page} for page in pages])
    _task_yaml(directory, name, lm_eval_task_dir() / "wikitext" / "wikitext.yaml", {"test": data})
    return name


def write_group(directory: Path, name: str, tasks: list[str], metric: str = "acc") -> str:
    """An lm-eval group of `tasks` aggregated as lm-eval's MMLU group is (weighted by size)."""
    listed = "".join(f"  - {task}\n" for task in tasks)
    (directory / f"{name}.yaml").write_text(
        f"group: {name}\ntask:\n{listed}aggregate_metric_list:\n  - metric: {metric}\n    weight_by_size: True\n",
        encoding="utf-8")
    return name


def run_lm_eval(model_dir: Path, task_dir: Path, tasks: list[str], num_fewshot: int | None = None,
                batch_size: int = 1) -> dict[str, Any]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    return lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={model_dir},dtype=float32", tasks=tasks,
        num_fewshot=num_fewshot, batch_size=batch_size, device="cpu", log_samples=True,
        task_manager=TaskManager(include_path=str(task_dir)),
    )


def per_sample_loglikelihoods(results: dict[str, Any], task: str) -> dict[int, list[float]]:
    return {s["doc_id"]: [float(r[0][0]) for r in s["resps"]] for s in results["samples"][task]}
