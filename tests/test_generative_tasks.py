"""GSM8K, HumanEval and IFEval as tasks of the engine: prompts as lm-eval builds them, scoring
through the real sandbox and checkers, and the opt-in for running generated code."""

from __future__ import annotations

import json
from pathlib import Path

import evalboard
import pytest
from cli_helpers import assert_one_line_error, run_cli
from evalboard.errors import UserError
from evalboard.models.adapters.base import Capabilities
from evalboard.taskdef.prepared import TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.registry import discover_tasks
from evalboard.tasks import humaneval
from lm_eval_reference import lm_eval_task_dir

ALL = Capabilities(loglikelihood=True, generate=True, chat=True)


def _prepared(name: str, **options):
    task = prepare_task(discover_tasks()[name], TaskOptions(**options))
    choose_formulation(task, ALL, "test")
    return task


def _lm_eval_prompts(tmp_path: Path, include: Path, rows: list[dict], num_fewshot: int | None = None) -> list:
    """lm-eval's own requests for its task file, on local rows (no model needed)."""
    from lm_eval.tasks import TaskManager

    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "ref_task.yaml").write_text(
        f"include: {include}\ntask: ref_task\ntag: []\ndataset_path: json\ndataset_name: null\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\ntraining_split: null\n")
    task = TaskManager(include_path=str(tmp_path)).load_task_or_group(["ref_task"])["ref_task"]
    if num_fewshot is not None:
        task.set_config("num_fewshot", num_fewshot)
    task.build_all_requests(limit=len(rows), rank=0, world_size=1)
    return sorted(task.instances, key=lambda i: i.doc_id)


def test_gsm8k_cot_prompts_and_stops_are_lm_evals(tmp_path: Path) -> None:
    task = _prepared("gsm8k_cot", limit=3)
    rows = [{"question": d["question"], "answer": d["answer"]} for d in task.docs]
    reference = _lm_eval_prompts(tmp_path, lm_eval_task_dir() / "gsm8k" / "gsm8k-cot.yaml", rows)
    for doc, instance in zip(task.docs, reference):
        (request,) = task.requests(doc)
        context, gen_kwargs = instance.arguments
        assert request.context == context
        assert set(request.params.stop) == set(gen_kwargs["until"])


def _lm_eval_task_config(relative: str) -> dict:
    """An lm-eval task file as data (its `!function` hooks left unresolved: lm-eval's humaneval
    hooks load a metric from the Hub at import time, which cannot work offline)."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    return yaml.load((lm_eval_task_dir() / relative).read_text(), Loader=_Loader)


def test_humaneval_prompts_and_stops_are_lm_evals() -> None:
    config = _lm_eval_task_config("humaneval/humaneval.yaml")
    assert config["doc_to_text"] == "{{prompt}}"
    task = _prepared("humaneval", limit=3)
    for doc in task.docs:
        (request,) = task.requests(doc)
        assert request.context == doc["prompt"]
        assert set(request.params.stop) == set(config["generation_kwargs"]["until"])
        assert request.params.max_new_tokens == config["generation_kwargs"]["max_gen_toks"]
        assert request.params.greedy


def test_gsm8k_five_shot_offline_says_where_examples_would_come_from() -> None:
    with pytest.raises(UserError, match="few-shot examples.*train.*--num-fewshot 0"):
        prepare_task(discover_tasks()["gsm8k"], TaskOptions(limit=2, data_source="offline"))
    assert len(prepare_task(discover_tasks()["gsm8k"], TaskOptions(limit=2, num_fewshot=0)).docs) == 2


def test_humaneval_canonical_solutions_pass_and_wrong_ones_fail_through_the_task_hook() -> None:
    docs = _prepared("humaneval", limit=12).docs
    right = humaneval.score_batch(docs, [[d["canonical_solution"]] for d in docs])
    assert [s["pass@1"] for s in right] == [1.0] * 12
    wrong = humaneval.score_batch(docs, [["    return None\n"] for _ in docs])
    assert [s["pass@1"] for s in wrong] == [0.0] * 12
    chat = humaneval.score_batch_chat(docs[:3], [[f"Sure:\n```python\n{d['prompt']}{d['canonical_solution']}```"] for d in docs[:3]])
    assert [s["pass@1"] for s in chat] == [1.0] * 3


def test_pass_at_k_with_several_samples_per_problem(tiny_model: Path) -> None:
    record = evalboard.evaluate(f"hf:{tiny_model}", "humaneval", limit=2, samples_per_problem=3, temperature=0.8,
                                max_new_tokens=16, allow_code_execution=True, output_dir=None)
    sample = record.samples["humaneval"][0]
    assert len(sample.responses) == 3 and len({r.text for r in sample.responses}) > 1
    assert record.tasks["humaneval"].samples_per_item == 3
    assert (record.tasks["humaneval"].generation or {})["temperature"] == 0.8
    with pytest.raises(UserError, match="greedy decoding"):
        evalboard.evaluate(f"hf:{tiny_model}", "humaneval", limit=2, samples_per_problem=3,
                           allow_code_execution=True, output_dir=None)


def test_code_execution_needs_the_explicit_flag(tiny_model: Path, tmp_path: Path) -> None:
    result = run_cli("run", "--model", f"hf:{tiny_model}", "--tasks", "humaneval", "--limit", "1",
                     "--output", str(tmp_path / "r"))
    assert_one_line_error(result, "--allow-code-execution")


def test_without_the_sandbox_generated_code_is_refused_not_run_unsandboxed(tiny_model: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with python but no bwrap
    bin_dir.mkdir()
    result = run_cli("run", "--model", f"hf:{tiny_model}", "--tasks", "humaneval", "--limit", "1",
                     "--allow-code-execution", "--output", str(tmp_path / "r"),
                     env={"PATH": str(bin_dir)})
    assert_one_line_error(result, "bubblewrap")
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_ifeval_and_gsm8k_run_end_to_end_with_recorded_generation_parameters(tiny_model: Path) -> None:
    record = evalboard.evaluate(f"hf:{tiny_model}", "ifeval,gsm8k_cot", limit=3, max_new_tokens=24, output_dir=None)
    ifeval = record.tasks["ifeval"]
    assert set(ifeval.metrics) == {"prompt_level_strict_acc", "inst_level_strict_acc",
                                   "prompt_level_loose_acc", "inst_level_loose_acc"}
    n_instructions = sum(len(s.scores["inst_level_strict_acc"]) for s in record.samples["ifeval"])
    assert ifeval.metrics["inst_level_strict_acc"].n == n_instructions > 3
    gsm = record.tasks["gsm8k_cot"]
    generation = gsm.generation or {}
    assert generation["max_new_tokens"] == 24 and "Q:" in generation["stop"]
    assert gsm.num_fewshot == 8 and gsm.primary_metric == "exact_match,strict-match"
