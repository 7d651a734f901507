"""The typed run record: older records still load (migrated), what the store writes reads back
unchanged, bad records are one-line errors, and docs/results-format.md documents exactly the
models' fields."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import typing
from pathlib import Path

import evalboard
import pytest
from evalboard.errors import UserError
from evalboard.leaderboard.build import build_leaderboard
from evalboard.records.run_record import (
    SCHEMA,
    RecordError,
    RequestUsage,
    RunRecord,
    RunSettings,
    RunUsage,
    SampleLine,
    SampleRequest,
    SampleResponse,
    SampleScores,
    load_run,
)
from evalboard.records.store import list_runs, save_run
from evalboard.records.usage import summarise_usage
from evalboard.requests import GenerateRequest, LoglikelihoodRequest, Response, RollingLoglikelihoodRequest, Usage
from evalboard.taskdef.prepared import TaskOptions
from pydantic import BaseModel

# Runs written by the code before typed records (schema evalboard.run/1): an evaluator run of the
# chance baseline (mmlu with groups, arc_easy, gsm8k_cot), an lm-eval import and a synthetic run.
STORE_V1 = Path(__file__).parent / "data" / "store_v1"
DOC = Path(__file__).resolve().parent.parent / "docs" / "results-format.md"


def _runs_by_harness() -> dict[str, RunRecord]:
    return {f"{r.harness.name}/{r.harness.version}": r for r in list_runs(STORE_V1)}


def _contents(record: RunRecord) -> tuple[dict, dict]:
    """Everything a run folder holds, as JSON data (what must survive a save and a load)."""
    samples = {task: [line.model_dump(mode="json") for line in record.load_samples(task)] for task in record.tasks}
    return record.model_dump(mode="json"), samples


def test_run_1_records_load_with_their_meaning_kept() -> None:
    assert {json.loads(p.read_text())["schema"] for p in STORE_V1.glob("*/run.json")} == {"evalboard.run/1"}
    runs = _runs_by_harness()
    assert sorted(runs) == ["evalboard/0.1.0", "evalboard/synthetic", "lm-eval/0.4.13"]
    own = runs["evalboard/0.1.0"]
    assert own.schema_version == SCHEMA and own.model.label == "chance baseline" and own.model.spec == "chance:0"
    assert own.tasks["mmlu"].groups == 1 and own.tasks["mmlu"].metrics["acc_macro"].stderr is None
    assert own.metric("mmlu") == 0.5 and own.settings.seed == 1234 and own.settings.limit == 2
    assert own.usage.unique_requests == 18 and own.usage.adapter == {} and own.pid == 6698
    mmlu = own.load_samples("mmlu")
    assert [s.group for s in mmlu] == ["abstract_algebra"] * 2 and len(mmlu[0].requests) == 4
    assert mmlu[0].requests[0].continuation == " A" and mmlu[0].responses[0].usage is not None
    (gsm,) = own.load_samples("gsm8k_cot")[0].requests
    assert gsm.kind == "generate" and gsm.params is not None and gsm.params["stop"] == ["Q:", "</s>", "<|im_end|>"]

    imported = runs["lm-eval/0.4.13"]
    assert imported.imported is not None and imported.imported.from_ == "lm-eval"
    assert imported.settings.batch_size == "4" and imported.tasks["ref_arc_easy"].lm_eval_version == 1.0
    first = imported.load_samples("ref_arc_easy")[0]
    assert first.doc_id == 0 and first.doc_hash and first.responses[0].usage is None

    synthetic = runs["evalboard/synthetic"]
    (request,) = synthetic.load_samples("gsm8k")[0].requests  # run/1 logged these parameters flat
    assert request.params == {"max_new_tokens": 256, "temperature": 0.0}


def test_saved_records_read_back_unchanged_and_the_board_is_the_same(tmp_path: Path) -> None:
    resaved = tmp_path / "v2"
    for record in list_runs(STORE_V1):
        _contents(record)  # all samples in memory, so that save_run writes them
        save_run(resaved, record)
    assert {json.loads(p.read_text())["schema"] for p in resaved.glob("*/run.json")} == {SCHEMA}
    before = {r.run_id: _contents(r) for r in list_runs(STORE_V1)}
    after = {r.run_id: _contents(r) for r in list_runs(resaved)}
    assert before == after and len(after) == 3
    pages = [build_leaderboard(store, tmp_path / name / "index.html", rounds=20, cache=False).page
             for store, name in ((STORE_V1, "from-v1"), (resaved, "from-v2"))]
    assert pages[0].read_bytes() == pages[1].read_bytes()


def test_the_evaluator_record_round_trips_through_the_store(tmp_path: Path) -> None:
    record = evalboard.evaluate("chance:0", ["mmlu", "gsm8k_cot"], limit=2, output_dir=tmp_path, label="floor",
                                progress=False)
    assert record.path is not None
    loaded = load_run(record.path)
    assert _contents(loaded) == _contents(record)
    frame = loaded.to_dataframe()
    assert set(frame["model"]) == {"chance:0"} and set(frame["label"]) == {"floor"}
    assert sorted(frame.loc[frame["primary"], "task"]) == ["gsm8k_cot", "mmlu"]


def _first_line(path: Path) -> dict:
    return json.loads(path.read_text().splitlines()[0])


def test_bad_records_are_one_line_errors_and_skipped_by_the_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(STORE_V1, store)
    folders = sorted(store.iterdir())
    damaged, foreign = folders[0] / "run.json", folders[1] / "run.json"
    damaged.write_text(json.dumps({**json.loads(damaged.read_text()), "colour": "red"}))
    foreign.write_text(json.dumps({**json.loads(foreign.read_text()), "schema": "evalboard.run/9"}))
    with pytest.raises(UserError, match=r"not a valid evalboard.run/1 record \(colour: Extra inputs") as error:
        load_run(damaged)
    assert isinstance(error.value, RecordError) and "\n" not in str(error.value)
    with pytest.raises(RecordError, match=r"not an evalboard run \(schema 'evalboard.run/9'\)"):
        load_run(foreign)
    (readable,) = list_runs(store)
    assert readable.path == folders[2]

    samples = next((folders[2] / "samples").iterdir())
    line = {**_first_line(samples), "surprise": 1}
    samples.write_text(json.dumps(line) + "\n")
    with pytest.raises(RecordError, match=rf"{re.escape(str(samples))} line 1 is not a valid sample line \(surprise"):
        readable.load_samples(samples.stem)


def test_the_ratings_reader_takes_the_sample_lines_own_fields() -> None:
    """SampleScores reads only doc_id and scores, so it must stay a projection of SampleLine."""
    for name, field in SampleScores.model_fields.items():
        assert field.annotation == SampleLine.model_fields[name].annotation | None  # type: ignore[operator]


def _names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_the_models_hold_everything_the_engine_records() -> None:
    """The evaluator fills these models from the engine's dataclasses: a new field there must be
    given a place (and a line in the docs) here, or every run would fail to save."""
    assert _names(TaskOptions) <= set(RunSettings.model_fields)
    assert set(summarise_usage([])) <= set(RunUsage.model_fields)
    assert _names(Usage) == set(RequestUsage.model_fields)
    derived = {"hit_max_new_tokens"}  # set by the evaluator from the response and its request
    assert _names(Response) | derived == set(SampleResponse.model_fields)
    logged = set().union(*(_names(c) for c in (LoglikelihoodRequest, RollingLoglikelihoodRequest, GenerateRequest)))
    assert logged - {"context"} == set(SampleRequest.model_fields)  # the prompt is logged on the sample


def _record_models() -> dict[str, type[BaseModel]]:
    """Every model a run folder is made of, found through the fields of RunRecord and SampleLine."""
    found: dict[str, type[BaseModel]] = {}

    def visit(annotation: object) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation.__name__ not in found:
                found[annotation.__name__] = annotation
                for field in annotation.model_fields.values():
                    visit(field.annotation)
        for argument in typing.get_args(annotation):
            visit(argument)

    visit(RunRecord)
    visit(SampleLine)
    return found


def _documented_fields() -> dict[str, set[str]]:
    """Model name (the first `Name` in a heading) -> the backticked names in its table's first column."""
    sections: dict[str, set[str]] = {}
    current: set[str] | None = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"#{2,3} .*?`([A-Z]\w*)`", line)
        if heading:
            current = sections.setdefault(heading.group(1), set())
        elif line.startswith("#"):
            current = None
        elif current is not None:
            row = re.match(r"\| `([^`]+)` \|", line)
            if row:
                current.add(row.group(1))
    return sections


def test_the_results_format_doc_lists_exactly_the_models_fields() -> None:
    models = _record_models()
    documented = _documented_fields()
    assert sorted(documented) == sorted(models)
    for name, model in models.items():
        fields = {f.alias or key for key, f in model.model_fields.items()}
        assert documented[name] == fields, (
            f"{name}: missing from the doc {sorted(fields - documented[name])}, "
            f"not in the model {sorted(documented[name] - fields)}"
        )
