"""The Python API: `evaluate(...)` runs tasks on a model and returns the run record."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from evalboard.models.adapters.base import AdapterSettings
from evalboard.engine.evaluator import RunConfig, run_evaluation
from evalboard.paths import response_cache_path
from evalboard.taskdef.prompting import PromptStyle
from evalboard.records.run_record import RunRecord
from evalboard.taskdef.prepared import TaskOptions


def task_options(
    *,
    num_fewshot: int | None = None,
    seed: int = 1234,
    limit: int | None = None,
    data_source: str = "auto",
    data_dir: str | Path | None = None,
    apply_chat_template: bool = False,
    system_prompt: str | None = None,
    formulation: str = "auto",
    samples_per_problem: int | None = None,
    temperature: float | None = None,
    max_new_tokens: int | None = None,
) -> TaskOptions:
    """The run-level task settings from `evaluate()`'s keywords (also used by the nightly planner,
    so a planned cell and an evaluated one always agree on the task fingerprint)."""
    return TaskOptions(
        num_fewshot=num_fewshot,
        seed=seed,
        limit=limit,
        data_source=data_source,  # type: ignore[arg-type]
        data_dir=Path(data_dir) if data_dir else None,
        style=PromptStyle(apply_chat_template, system_prompt),
        formulation=formulation,  # type: ignore[arg-type]
        samples_per_problem=samples_per_problem,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
    )


def evaluate(
    model: str,
    tasks: Sequence[str] | str,
    *,
    num_fewshot: int | None = None,
    limit: int | None = None,
    batch_size: int = 8,
    seed: int = 1234,
    output_dir: str | Path | None = "results",
    apply_chat_template: bool = False,
    system_prompt: str | None = None,
    formulation: str = "auto",
    data_source: str = "auto",
    data_dir: str | Path | None = None,
    include_paths: Sequence[str | Path] = (),
    device: str = "auto",
    dtype: str = "auto",
    concurrency: int = 8,
    cache: bool | str | Path = True,
    allow_code_execution: bool = False,
    samples_per_problem: int | None = None,
    temperature: float | None = None,
    max_new_tokens: int | None = None,
    label: str | None = None,
    progress: bool = False,
) -> RunRecord:
    """Evaluate `model` (a model spec such as "hf:PATH") on `tasks` and return the run record
    (`record.to_dataframe()` gives one row per task and metric). With `output_dir`, the run is
    also written to the results store."""
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    if cache is True:
        cache_path: Path | None = response_cache_path()
    elif cache is False:
        cache_path = None
    else:
        cache_path = Path(cache)
    options = task_options(
        num_fewshot=num_fewshot, seed=seed, limit=limit, data_source=data_source, data_dir=data_dir,
        apply_chat_template=apply_chat_template, system_prompt=system_prompt, formulation=formulation,
        samples_per_problem=samples_per_problem, temperature=temperature, max_new_tokens=max_new_tokens,
    )
    config = RunConfig(
        model=model,
        tasks=list(tasks),
        options=options,
        adapter_settings=AdapterSettings(batch_size=batch_size, device=device, dtype=dtype,
                                         concurrency=concurrency),
        output_dir=Path(output_dir) if output_dir is not None else None,
        include_paths=[Path(p) for p in include_paths],
        cache_path=cache_path,
        allow_code_execution=allow_code_execution,
        progress=progress,
        label=label,
    )
    return run_evaluation(config)
