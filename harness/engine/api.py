"""The Python API: `evaluate(...)` runs tasks on a model and returns the run record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalboard.engine.evaluator import run_evaluation
from evalboard.engine.options import RunOptions
from evalboard.errors import UserError
from evalboard.models.preloaded import register_loaded
from evalboard.records.run_record import RunRecord
from evalboard.taskdef.prepared import TaskOptions
from evalboard.taskdef.registry import split_task_names


def task_options(**options: Any) -> TaskOptions:
    """The run-level task settings `evaluate()` would use for the same keywords."""
    return RunOptions.parse(options, where="task_options()").task_options()


def evaluate(model: Any, tasks: Sequence[str] | str, *, progress: bool = False, tokenizer: Any = None,
             **options: Any) -> RunRecord:
    """Evaluate `model` (a model spec such as "hf:PATH", or an already loaded transformers model
    with its `tokenizer`, as lm-eval's `HFLM(pretrained=model)`) on `tasks` and return the run
    record (`record.to_dataframe()` gives one row per task and metric). `tasks` are names, groups
    (`mmlu`) or globs (`"mmlu_*"`), as a list or one comma- or space-separated text. The keywords are the fields
    of `evalboard.engine.options.RunOptions` (num_fewshot, limit, batch_size, output_dir,
    max_length, ...), the same options as `evalboard run`'s flags, checked strictly: a wrong type or
    value is a one-line UserError. With `output_dir` (default results/), the run is also written to
    the results store; `output_dir=None` keeps it in memory. A loaded model is recorded under the
    spec `hf:in-memory:<weights hash>` and labelled with its own name unless `label=` is given."""
    if not isinstance(model, str):
        model, name = register_loaded(model, tokenizer)
        options.setdefault("label", name)
    elif tokenizer is not None:
        raise UserError("tokenizer= goes with a loaded model object; a spec string loads its own tokenizer")
    tasks = split_task_names(tasks)  # "a,b", "a b" or a list; groups and globs resolve in the run
    return run_evaluation(RunOptions.parse(options).run_config(model, tasks, progress=progress))
