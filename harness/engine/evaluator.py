"""One evaluation run, in one direction: tasks -> requests -> (cache | adapter) -> scores -> record.

Requests from every task are deduplicated and looked up in the response cache first; only the
missing ones go to the model, grouped by kind, and each answer is cached the moment it arrives.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import evalboard
from evalboard.engine.empty_answers import warn_if_all_empty
from evalboard.engine.executors import ExecutorSettings, open_model
from evalboard.engine.metrics import aggregate, subtask_metrics
from evalboard.errors import UserError
from evalboard.fingerprint import stable_hash
from evalboard.models.adapters.base import AdapterSettings, ModelAdapter, ModelSpec
from evalboard.records.cache import ResponseCache
from evalboard.records.run_record import (
    HarnessInfo,
    MetricResult,
    ModelIdentity,
    RunRecord,
    RunSettings,
    RunUsage,
    SampleLine,
    SampleRequest,
    SampleResponse,
    TaskResult,
)
from evalboard.records.store import check_writable, save_run
from evalboard.records.usage import summarise_usage
from evalboard.requests import GenerateRequest, Prompt, Request, Response, prompt_text, request_key, request_to_json
from evalboard.taskdef.prepared import (
    PreparedTask,
    TaskOptions,
    choose_formulation,
    ignored_generation_options,
    prepare_task,
)
from evalboard.taskdef.registry import discover_tasks, has_hook, hook, resolve_task_names
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)


@dataclass
class RunConfig:
    model: str
    tasks: Sequence[str]
    options: TaskOptions = TaskOptions()
    adapter_settings: AdapterSettings = field(default_factory=AdapterSettings)
    output_dir: Path | None = Path("results")
    include_paths: Sequence[Path] = ()
    cache_path: Path | None = None
    allow_code_execution: bool = False
    progress: bool = True
    label: str | None = None  # a display name for the leaderboard (defaults to the spec)
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)  # where requests are answered


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def _run_id(model: str, started: dt.datetime, salt: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", model).strip("-")[:48]
    return f"{started:%Y%m%d-%H%M%S}-{slug}-{salt[:8]}"


class _Answers:
    """Collects responses by request key, writing each fresh one through to the cache."""

    def __init__(self, cache: ResponseCache, model_fp: str, progress: bool) -> None:
        self.cache, self.model_fp, self.progress = cache, model_fp, progress
        self.by_key: dict[str, Response] = {}
        self.fresh = 0

    def fetch(self, adapter: ModelAdapter, requests: dict[str, Request]) -> None:
        self.by_key.update(self.cache.get_many(self.model_fp, requests.values()))
        missing: dict[str, list[Request]] = defaultdict(list)
        for key, request in requests.items():
            if key not in self.by_key:
                missing[request.kind].append(request)
        for kind, batch in missing.items():
            bar = tqdm(total=len(batch), desc=f"{kind}", unit="req", disable=not self.progress, leave=False)

            def on_result(index: int, response: Response, batch: list[Request] = batch, bar: Any = bar) -> None:
                request = batch[index]
                self.by_key[request_key(request)] = response
                self.cache.put(self.model_fp, request, response)
                self.fresh += 1
                bar.update(1)

            try:
                getattr(adapter, kind)(batch, on_result)
            finally:
                bar.close()
            lost = [r for r in batch if request_key(r) not in self.by_key]
            if lost:  # an adapter must answer everything, failures included
                raise RuntimeError(f"adapter {adapter.spec.raw} left {len(lost)} {kind} requests unanswered")


def _score_task(task: PreparedTask, requests_by_doc: list[list[Request]], answers: _Answers,
                model_input: Callable[[Prompt], str | None] = lambda prompt: None) -> tuple[TaskResult, list[SampleLine]]:
    formulation = task.formulation
    assert formulation is not None
    responses_by_doc = [[answers.by_key[request_key(r)] for r in requests] for requests in requests_by_doc]
    answered = [i for i, responses in enumerate(responses_by_doc) if not any(r.failed for r in responses)]
    # scored together: a batch scorer (HumanEval's sandbox) runs all programs in parallel
    scored = dict(zip(answered, formulation.score_all([task.docs[i] for i in answered],
                                                      [responses_by_doc[i] for i in answered])))
    samples, scores, groups = [], [], []
    for index, (doc, requests, responses) in enumerate(zip(task.docs, requests_by_doc, responses_by_doc)):
        errors = [r.error for r in responses if r.failed]
        score = scored.get(index, {})
        if index in scored:
            scores.append({k: v for k, v in score.items() if _is_metric_value(v)})
            groups.append(doc.get(task.spec.group_field) if task.spec.group_field else None)
        samples.append(
            SampleLine(
                index=index,
                doc_id=doc["id"],
                prompt=prompt_text(requests[0].context) if hasattr(requests[0], "context") else None,
                target=formulation.target(doc),
                requests=[SampleRequest.model_validate(_request_summary(r)) for r in requests],
                responses=[SampleResponse.model_validate(_response_summary(r, q)) for q, r in zip(requests, responses)],
                scores=score,
                error=errors[0] if errors else None,
                group=doc.get(task.spec.group_field) if task.spec.group_field else None,
                model_input=model_input(requests[0].context) if hasattr(requests[0], "context") else None,
                picks=formulation.picks(doc, responses) if index in scored else None,
            )
        )
    failed = len(task.docs) - len(answered)
    metrics = aggregate(scores, groups if task.spec.group_field else None, formulation.aggregations,
                        pooled=task.spec.lm_eval_group)
    subtasks = None
    if task.spec.group_field:  # each group's own figures, as lm-eval's results list each subtask
        subtasks = {name: {metric: MetricResult.model_validate(value.to_json()) for metric, value in figures.items()}
                    for name, figures in subtask_metrics(scores, groups, formulation.aggregations).items()}
    entry = TaskResult(
        task_fingerprint=task.fingerprint(),
        items_hash=stable_hash([d["id"] for d in task.docs]),
        mirrors=task.spec.mirrors,
        formulation=formulation.name,
        num_fewshot=task.num_fewshot,
        primary_metric=formulation.primary_metric(),
        higher_is_better=task.spec.higher_is_better,
        metrics={name: MetricResult.model_validate(value.to_json()) for name, value in metrics.items()},
        n_items=len(task.docs),
        failed_items=failed,
        data_origin=task.origin,
        generation=asdict(formulation.params) if formulation.params is not None else None,
        samples_per_item=formulation.samples,
        samples_file=f"samples/{task.name}.jsonl",
        groups=len(subtasks) if subtasks is not None else None,
        subtasks=subtasks,
    )
    return entry, samples


def _is_metric_value(value: Any) -> bool:
    """Numbers (and booleans) are metrics, and so are lists of them (pooled); anything else in a
    sample's scores (e.g. HumanEval's failure kinds) is kept in the log only."""
    if isinstance(value, (list, tuple)):
        return all(isinstance(v, (int, float)) for v in value)
    return isinstance(value, (int, float))


def _request_summary(request: Request) -> dict[str, Any]:
    data = request_to_json(request)
    data.pop("context", None)  # the prompt is logged once per sample
    return data


def _response_summary(response: Response, request: Request) -> dict[str, Any]:
    data = {k: v for k, v in response.to_json().items() if v is not None}
    if isinstance(request, GenerateRequest) and response.usage.output_tokens > 0:  # 0: not reported
        data["hit_max_new_tokens"] = response.usage.output_tokens >= request.params.max_new_tokens
    return data


def _usage(used: list[Response], unique: int, fresh: int, adapter_counters: dict[str, Any]) -> RunUsage:
    """Cost, latency and throughput of the answers this run used (cached ones included, so a rerun
    reports the same figures), with this session's own adapter counters kept apart."""
    return RunUsage(
        **summarise_usage(used, priced=adapter_counters.get("cost_usd", 0.0) is not None),
        unique_requests=unique,
        requests_answered_now=fresh,
        cache_hits=unique - fresh,
        adapter=adapter_counters,
    )


def _warn_ignored_generation_options(tasks: Sequence[PreparedTask]) -> None:
    ignoring = {task.name: ignored_generation_options(task) for task in tasks}
    ignoring = {name: options for name, options in ignoring.items() if options}
    if ignoring:
        options = sorted({option for names in ignoring.values() for option in names})
        names = sorted(ignoring)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        logger.warning("warning: %s %s no effect on %s: %s not generate text (loglikelihood scoring, or a "
                       "letter answer with fixed settings)", ", ".join(options),
                       "has" if len(options) == 1 else "have", shown, "it does" if len(names) == 1 else "they do")


def run_evaluation(config: RunConfig) -> RunRecord:
    started = dt.datetime.now(dt.timezone.utc)
    clock = time.perf_counter()
    specs = discover_tasks(config.include_paths)
    names = resolve_task_names(config.tasks, specs)
    if not names:
        raise UserError("no tasks given; pass --tasks a,b (see `evalboard tasks`)")
    needs_execution = [n for n in names if specs[n].requires_code_execution]
    if needs_execution and not config.allow_code_execution:
        raise UserError(
            f"task(s) {', '.join(needs_execution)} run model-written code; add --allow-code-execution "
            f"to run it (always inside the sandbox)"
        )
    if needs_execution:
        from evalboard.execution.sandbox import require_sandbox

        require_sandbox()  # refuse before any work rather than ever run code unsandboxed
    if config.output_dir is not None:
        check_writable(config.output_dir)
    model_spec = ModelSpec.parse(config.model)
    tasks = [prepare_task(specs[name], config.options) for name in names]  # data before the model
    for task in tasks:  # and what scoring needs (a language's runtime), so no answer waits on it
        if has_hook(task.spec, "check_ready"):
            hook(task.spec, "check_ready")(task.docs)

    cache = ResponseCache(config.cache_path)
    adapter = open_model(config.executor, model_spec, config.adapter_settings)
    try:
        for task in tasks:
            choose_formulation(task, adapter.capabilities, model_spec.raw)
            task.fingerprint()  # renders the probe documents' prompts: a bad one fails before any request
        _warn_ignored_generation_options(tasks)
        model_fp_parts = adapter.fingerprint()
        model_fp = stable_hash(model_fp_parts)
        planned = {task.name: [task.requests(doc) for doc in task.docs] for task in tasks}
        requests: dict[str, Request] = {}
        for per_doc in planned.values():
            for doc_requests in per_doc:
                for request in doc_requests:
                    requests.setdefault(request_key(request), request)
        answers = _Answers(cache, model_fp, config.progress)
        auto_batch: dict[str, int] = {}
        if config.adapter_settings.batch_size == "auto":  # found once per task: each task asked on its own
            for task in tasks:
                found = len(adapter.usage_summary().get("auto_batch_sizes", []))
                answers.fetch(adapter, {request_key(r): r for rs in planned[task.name] for r in rs})
                sizes = adapter.usage_summary().get("auto_batch_sizes", [])[found:]
                if sizes:
                    auto_batch[task.name] = min(sizes)
        else:
            answers.fetch(adapter, requests)
        task_entries, samples = {}, {}
        blank_by_design = bool(adapter.describe().get("baseline"))  # chance: answers nothing, on purpose
        for task in tasks:
            task_entries[task.name], samples[task.name] = _score_task(task, planned[task.name], answers,
                                                                    adapter.model_input)
            if not blank_by_design:
                warn_if_all_empty(task.name, samples[task.name], config.options.style.apply_chat_template)
        used = [answers.by_key[key] for key in requests]
        record = RunRecord(
            run_id=_run_id(config.label or model_spec.raw, started, stable_hash([model_fp, names, started.isoformat()])),
            created_at=started.isoformat(),
            harness=HarnessInfo(name="evalboard", version=evalboard.__version__, git_commit=_git_commit()),
            model=ModelIdentity(
                spec=model_spec.raw,
                label=config.label or model_spec.raw,
                fingerprint=model_fp,
                fingerprint_parts=model_fp_parts,
                info=adapter.describe(),
            ),
            settings=RunSettings.model_validate({
                **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config.options).items()},
                "batch_size": config.adapter_settings.batch_size,
                "auto_batch_size": auto_batch or None,
                "allow_code_execution": config.allow_code_execution,
            }),
            tasks=task_entries,
            usage=_usage(used, len(requests), answers.fresh, adapter.usage_summary()),
            wall_time_s=round(time.perf_counter() - clock, 3),
            pid=os.getpid(),
        ).with_samples(samples)
    finally:
        adapter.close()
        cache.close()
    if config.output_dir is not None:
        save_run(config.output_dir, record)
    return record
