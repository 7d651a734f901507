"""The pick a sample shows (`samples_df`'s pick_norm, compare's answers) is the choice acc_norm
scored: loglikelihood per character of the choice's own text, without the target delimiter (lm-eval's
acc_norm), recorded when the item is scored."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from evalboard.comparison.compare import answer_of
from evalboard.engine.evaluator import _score_task
from evalboard.records.frames import sample_row
from evalboard.requests import Capabilities, Response, request_key
from evalboard.taskdef.prepared import TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.registry import discover_tasks

TASK = """name: pick_probe
type: multiple_choice
data:
  split: test
  data_files: pick_probe.jsonl
prompt:
  text: "Question: {{ question }}\\nAnswer:"
  choices: "options"
  answer: "answer"
primary_metric: acc_norm
"""
# One 1-character choice at -2 and one 10-character choice at -15: per character of the choice
# the long one wins (-1.5 > -2); counting the delimiter " " (-2/2 = -1 > -15/11) the short one would.
LOGPROBS = {"A": -2.0, "abcdefghij": -15.0}


def test_pick_norm_is_the_choice_acc_norm_scored(tmp_path: Path) -> None:
    (tmp_path / "pick_probe.yaml").write_text(TASK)
    item = {"question": "Which?", "options": list(LOGPROBS), "answer": 1}
    (tmp_path / "pick_probe.jsonl").write_text(json.dumps(item) + "\n")
    task = prepare_task(discover_tasks([tmp_path])["pick_probe"], TaskOptions(num_fewshot=0))
    choose_formulation(task, Capabilities(loglikelihood=True, generate=False, chat=False), "crafted")
    requests = [task.requests(doc) for doc in task.docs]
    continuations = [r.continuation for r in requests[0]]
    assert continuations == [" A", " abcdefghij"]  # the delimiter is in what the model scores
    by_continuation = {f" {choice}": lp for choice, lp in LOGPROBS.items()}
    # the crafted item tells the two definitions apart
    with_delimiter = [by_continuation[c] / len(c) for c in continuations]
    assert max(range(2), key=with_delimiter.__getitem__) == 0
    answers = SimpleNamespace(by_key={request_key(r): Response(logprob=by_continuation[r.continuation],
                                                               is_greedy=False) for r in requests[0]})
    _, (sample,) = _score_task(task, requests, answers)  # type: ignore[arg-type]
    assert sample.scores == {"acc": 0.0, "acc_norm": 1.0}
    assert sample.picks == {"acc": 0, "acc_norm": 1}
    row = sample_row(sample)
    assert (row["pick"], row["pick_norm"]) == (0, 1)
    assert float(row["pick_norm"] == row["target"]) == row["acc_norm"]
    assert answer_of(sample, "acc_norm") == "abcdefghij" and answer_of(sample, "acc") == "A"
