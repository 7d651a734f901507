"""Joining imported lm-eval tasks to the evalboard tasks that mirror them.

An imported task joins an evalboard task's leaderboard column only when it is provably the same
measurement: the evalboard task mirrors that lm-eval task by name (`mirrors: lm-eval NAME`), and
every imported item, in order, was asked exactly the requests evalboard builds for the same item
with the same settings (the same context text, few-shot examples included, and the same
continuations). Then the imported task takes evalboard's name, fingerprint, item hash and
primary metric (its own fingerprint is kept as `source_fingerprint`); anything less and it keeps
its own column. Without per-sample logs (`--log_samples`) the items cannot be checked, so
nothing joins.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evalboard.errors import UserError
from evalboard.fingerprint import stable_hash
from evalboard.records.run_record import RunRecord, SampleLine, TaskResult
from evalboard.requests import Capabilities, LoglikelihoodRequest, prompt_text
from evalboard.taskdef.prepared import PreparedTask, TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.registry import discover_tasks
from evalboard.taskdef.spec import TaskSpec

_LOGLIKELIHOOD_ONLY = Capabilities(loglikelihood=True, generate=False, chat=False)


def _mirroring(specs: dict[str, TaskSpec], lm_eval_task: str) -> list[TaskSpec]:
    return [spec for spec in specs.values()
            if spec.mirrors.split(" (")[0].split() == ["lm-eval", lm_eval_task]]


def _same_requests(task: PreparedTask, samples: Sequence[SampleLine]) -> bool:
    if len(samples) != len(task.docs):
        return False
    for doc, sample in zip(task.docs, samples):
        requests = task.requests(doc)
        if not all(isinstance(r, LoglikelihoodRequest) for r in requests):
            return False
        asked = [(prompt_text(r.context), r.continuation) for r in requests if isinstance(r, LoglikelihoodRequest)]
        logged = [(sample.prompt, r.continuation) for r in sample.requests]
        if asked != logged:
            return False
    return True


def _prepared(spec: TaskSpec, entry: TaskResult, record: RunRecord, data_dir: Path | None) -> PreparedTask | None:
    options = TaskOptions(num_fewshot=entry.num_fewshot, seed=record.settings.seed or 1234, limit=entry.n_items,
                          data_dir=data_dir)
    try:
        task = prepare_task(spec, options)
        choose_formulation(task, _LOGLIKELIHOOD_ONLY, record.model.spec)
    except UserError:  # its data is not here, or it has no loglikelihood formulation
        return None
    return task


def join_mirrored_tasks(record: RunRecord, include_paths: Sequence[Path] = (),
                        data_dir: Path | None = None) -> list[tuple[str, str]]:
    """Rename, in place, each imported loglikelihood task of `record` that is the same measurement
    as the evalboard task mirroring it (see the module docstring). Returns (lm-eval name,
    evalboard name) for each task that joined."""
    if record.settings.style.apply_chat_template or record.settings.style.system_prompt:
        return []  # lm-eval's chat rendering is not evalboard's: the requests could not be compared
    specs = discover_tasks(include_paths)
    joined = []
    for name, entry in list(record.tasks.items()):
        samples = record.samples.get(name)
        if entry.formulation != "loglikelihood" or not samples or entry.source_fingerprint is not None:
            continue
        for spec in _mirroring(specs, name):
            if spec.name in record.tasks and spec.name != name:
                continue
            task = _prepared(spec, entry, record, data_dir)
            if task is None or not _same_requests(task, samples):
                continue
            assert task.formulation is not None
            primary = task.formulation.primary_metric()
            if primary not in entry.metrics:
                continue
            record.tasks.pop(name)
            record.samples.pop(name)
            for sample, doc in zip(samples, task.docs):
                sample.doc_id = doc["id"]  # paired with evalboard's own runs by item id
            record.tasks[spec.name] = entry.model_copy(update={
                "task_fingerprint": task.fingerprint(), "source_fingerprint": entry.task_fingerprint,
                "items_hash": stable_hash([d["id"] for d in task.docs]), "mirrors": spec.mirrors,
                "primary_metric": primary, "higher_is_better": spec.higher_is_better,
                "data_origin": task.origin, "samples_file": f"samples/{spec.name}.jsonl",
            })
            record.samples[spec.name] = samples
            joined.append((name, spec.name))
            break
    return joined
