"""`evalboard import lm-eval PATH`: lm-evaluation-harness output files become runs in the store.

lm-eval writes `results_<date>.json` (aggregated metrics, task configs, model info) and, with
`--log_samples`, one `samples_<task>_<date>.jsonl` per task. Each results file becomes one run,
marked `imported: {from: lm-eval, ...}`; its tasks keep lm-eval's names and metric names (with the
filter, as lm-eval prints them: `exact_match,strict-match`; the `none` filter is dropped). The
board puts imported numbers in their own columns (variant `lm-eval`): they were measured by
another harness and are not mixed with evalboard's own, except where a task is provably the same
measurement as the evalboard task that mirrors it (`join`: evalboard.engine.lm_eval_join, which
the CLI passes in). Per-sample logs, where present, become samples files, so imported runs take
part in the ratings; without them a task has metrics only. The default label is the model's name
(a Hub id; for a local folder or a Hub cache snapshot, the model's own name, not the path).

Imports are idempotent: the run id derives from the results file's content, and a run that is
already in the store is skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalboard.errors import UserError
from evalboard.fingerprint import stable_hash
from evalboard.records.run_record import (
    HarnessInfo,
    ImportInfo,
    MetricResult,
    ModelIdentity,
    PromptStyleSettings,
    RunRecord,
    RunSettings,
    RunUsage,
    SampleLine,
    SampleRequest,
    SampleResponse,
    TaskResult,
)
from evalboard.records.store import check_writable, save_run

OPEN_BACKENDS = {"hf", "hf-auto", "huggingface", "vllm", "vllm-vlm", "hf-multimodal", "sglang", "gguf", "ggml",
                 "mamba_ssm", "neuronx", "optimum-causal", "openvino", "ipex", "nemo_lm", "local-completions",
                 "local-chat-completions"}
CLOSED_BACKENDS = {"openai-completions", "openai-chat-completions", "anthropic-chat", "anthropic-completions",
                   "anthropic-chat-completions", "textsynth", "watsonx_llm"}
FORMULATIONS = {"multiple_choice": "loglikelihood", "loglikelihood": "loglikelihood",
                "generate_until": "generate", "loglikelihood_rolling": "loglikelihood_rolling"}


@dataclass
class ImportResult:
    imported: list[Path]
    skipped: list[str]  # run ids already in the store


def metric_name(key: str) -> tuple[str, str]:
    """lm-eval's 'acc,none' -> ('acc', 'none'); our metric name drops the 'none' filter."""
    metric, _, filt = key.partition(",")
    return metric, filt or "none"


def _our_metric(metric: str, filt: str) -> str:
    return metric if filt == "none" else f"{metric},{filt}"


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None  # lm-eval writes "N/A" for a missing stderr
    return number if number == number else None


def _metrics(result: dict[str, Any], n: int) -> dict[str, MetricResult]:
    out = {}
    for key, value in result.items():
        if "," not in key or "_stderr," in key:
            continue
        metric, filt = metric_name(key)
        number = _number(value)
        if number is None:
            continue
        stderr = _number(result.get(f"{metric}_stderr,{filt}"))
        out[_our_metric(metric, filt)] = MetricResult(value=number, stderr=stderr, n=n)
    return out


def _primary(task: str, data: dict[str, Any], metrics: dict[str, Any]) -> str | None:
    """The first metric the task's config lists (with the first filter that reported it)."""
    config = data.get("configs", {}).get(task, {})
    for entry in config.get("metric_list") or []:
        name = entry.get("metric")
        for key in metrics:
            if key == name or key.startswith(f"{name},"):
                return key
    return next(iter(metrics), None)


def _sample_files(results_file: Path) -> dict[str, Path]:
    """samples_<task>_<date>.jsonl written beside results_<date>.json, by task name."""
    date = results_file.stem[len("results_"):]
    found = {}
    for path in sorted(results_file.parent.glob(f"samples_*_{date}.jsonl")):
        found[path.name[len("samples_"): -len(f"_{date}.jsonl")]] = path
    return found


def _response(raw: Any, kind: str) -> dict[str, Any]:
    first = raw[0] if isinstance(raw, list) and raw else raw
    if kind == "loglikelihood" and isinstance(first, (list, tuple)) and len(first) == 2:
        return {"logprob": float(first[0]), "is_greedy": str(first[1]) == "True"}
    if kind == "loglikelihood_rolling":
        return {"logprob": float(first[0] if isinstance(first, (list, tuple)) else first)}
    return {"text": str(first)}


def _request(kind: str, argument: dict[str, Any]) -> dict[str, Any]:
    """One lm-eval argument tuple as a logged request: a choice's continuation, or generation kwargs."""
    if kind == "loglikelihood":
        return {"kind": kind, "continuation": argument.get("arg_1")}
    kwargs = argument.get("arg_1")
    return {"kind": kind, "params": kwargs} if isinstance(kwargs, dict) else {"kind": kind}


def _convert_samples(path: Path, output_type: str) -> list[SampleLine]:
    """lm-eval sample lines (one per doc and filter) -> evalboard samples (one per doc)."""
    kind = FORMULATIONS.get(output_type, "generate")  # the request kind behind every argument tuple
    by_doc: dict[Any, SampleLine] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            raw = json.loads(line)
            doc_id = raw.get("doc_id")
            sample = by_doc.get(doc_id)
            if sample is None:
                arguments = [raw["arguments"][k] for k in sorted(raw.get("arguments", {}), key=_arg_order)]
                target: Any = raw.get("target")
                if output_type == "multiple_choice" and isinstance(target, str) and target.isdigit():
                    target = int(target)
                sample = SampleLine(
                    index=len(by_doc), doc_id=doc_id,
                    prompt=str(arguments[0].get("arg_0", "")) if arguments else None,
                    target=target,
                    requests=[SampleRequest.model_validate(_request(kind, a)) for a in arguments],
                    responses=[SampleResponse.model_validate(_response(r, kind)) for r in raw.get("resps", [])],
                    doc_hash=raw.get("doc_hash"),
                )
                by_doc[doc_id] = sample
            filt = raw.get("filter", "none")
            for metric in raw.get("metrics", []):
                if metric in raw:
                    sample.scores[_our_metric(metric, filt)] = raw[metric]
            if filt != "none" and raw.get("filtered_resps") is not None:
                sample.filtered = {**(sample.filtered or {}), filt: raw["filtered_resps"]}
    return list(by_doc.values())


def _arg_order(key: str) -> int:
    match = re.search(r"(\d+)$", key)
    return int(match.group(1)) if match else 0


def _model_section(data: dict[str, Any], label: str | None) -> ModelIdentity:
    config = data.get("config", {})
    backend = str(config.get("model", "lm-eval"))
    name = str(data.get("model_name") or (config.get("model_args") or {}).get("pretrained", "") or backend)
    parts = {
        "source": "lm-eval", "backend": backend, "model_args": config.get("model_args"),
        "model_sha": config.get("model_sha"), "model_revision": config.get("model_revision"),
        "model_dtype": config.get("model_dtype"), "chat_template_sha": data.get("chat_template_sha"),
        "tokenizer": [data.get("tokenizer_bos_token"), data.get("tokenizer_eos_token"), data.get("eot_token_id")],
        "max_length": data.get("max_length"),
    }
    info: dict[str, Any] = {"provider": "lm-eval", "backend": backend}
    if backend in OPEN_BACKENDS:
        info["open_weights"] = True
    elif backend in CLOSED_BACKENDS:
        info["open_weights"] = False
    parameters = config.get("model_num_parameters")
    if isinstance(parameters, (int, float)) and parameters > 0:
        info["parameters"] = int(parameters)
    if config.get("model_dtype"):
        info["dtype"] = str(config["model_dtype"])
    spec = f"{backend}:{name}"
    return ModelIdentity(spec=spec, label=label or model_name(name), fingerprint=stable_hash(parts),
                         fingerprint_parts=parts, info=info)


def model_name(name: str) -> str:
    """A display name for what lm-eval calls the model: a Hub id as it is; a Hub cache snapshot
    (`.../models--ORG--NAME/snapshots/SHA`) as ORG/NAME; any other local path as its folder's name."""
    cached = re.search(r"models--([^/\\]+?)--([^/\\]+)", name)
    if cached:
        return f"{cached.group(1)}/{cached.group(2)}"
    if name.startswith(("/", "~", ".")) or "\\" in name or name.count("/") > 1:
        return Path(name.rstrip("/\\")).name or name
    return name


def _task_entry(task: str, data: dict[str, Any], samples: list[SampleLine] | None,
                samples_file: str | None) -> TaskResult | None:
    result = data["results"][task]
    configs = data.get("configs", {})
    subtasks = data.get("group_subtasks", {}).get(task) or []
    config = configs.get(task, {})
    output_types = {configs.get(s, {}).get("output_type") for s in subtasks} if subtasks else {config.get("output_type")}
    output_type = output_types.pop() if len(output_types) == 1 else "mixed"
    n_samples = data.get("n-samples", {}).get(task, {})
    n = int(result.get("sample_len") or n_samples.get("effective") or (len(samples) if samples else 0))
    metrics = _metrics(result, n)
    primary = _primary(task, data, metrics)
    if primary is None:
        return None
    base_metric = primary.partition(",")[0]
    higher = data.get("higher_is_better", {}).get(task, {}).get(base_metric, True)
    shots = data.get("n-shot", {}).get(task, config.get("num_fewshot") or 0)
    definition = {k: v for k, v in config.items() if k != "metadata"}
    fingerprint = stable_hash({
        "harness": "lm-eval", "task": task, "definition": definition, "task_hash": data.get("task_hashes", {}).get(task),
        "subtasks": sorted(subtasks), "num_fewshot": shots, "fewshot_seed": data.get("config", {}).get("fewshot_seed"),
        "chat_template_sha": data.get("chat_template_sha"), "system_instruction_sha": data.get("system_instruction_sha"),
        "fewshot_as_multiturn": data.get("fewshot_as_multiturn"), "gen_kwargs": data.get("config", {}).get("gen_kwargs"),
    })
    items = [s.doc_hash or s.doc_id for s in samples] if samples else [n]
    return TaskResult(
        task_fingerprint=fingerprint,
        items_hash=stable_hash(items),
        mirrors=f"lm-eval {task}",
        formulation=FORMULATIONS.get(str(output_type), str(output_type)),
        num_fewshot=int(shots) if isinstance(shots, (int, float)) else 0,
        primary_metric=primary,
        higher_is_better=bool(higher) if higher is not None else True,
        metrics=metrics,
        n_items=n,
        failed_items=0,
        data_origin=str(config.get("dataset_path") or "lm-eval"),
        generation=config.get("generation_kwargs"),
        samples_per_item=int(config.get("repeats") or 1),
        samples_file=samples_file,
        lm_eval_version=data.get("versions", {}).get(task),
    )


def convert_results_file(results_file: Path, label: str | None = None) -> RunRecord:
    """One lm-eval results file (and its sample logs) as an in-memory run record."""
    raw_bytes = results_file.read_bytes()
    try:
        data = json.loads(raw_bytes)
    except json.JSONDecodeError as exc:
        raise UserError(f"{results_file} is not valid JSON ({exc.msg}); is it an lm-eval results file?") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict) or "config" not in data:
        raise UserError(f"{results_file} is not an lm-eval results file (no `results` and `config`)")
    model = _model_section(data, label)
    sample_paths = _sample_files(results_file)
    tasks, samples = {}, {}
    for task in sorted(data["results"]):
        task_samples = None
        samples_file = None
        if task in sample_paths:
            output_type = data.get("configs", {}).get(task, {}).get("output_type", "generate_until")
            task_samples = _convert_samples(sample_paths[task], output_type)
            samples_file = f"samples/{re.sub(r'[^A-Za-z0-9_.-]', '_', task)}.jsonl"
        entry = _task_entry(task, data, task_samples, samples_file)
        if entry is None:
            continue
        tasks[task] = entry
        if task_samples is not None:
            samples[task] = task_samples
    if not tasks:
        raise UserError(f"{results_file} holds no task with numeric metrics; nothing to import")
    created = dt.datetime.fromtimestamp(float(data.get("date") or results_file.stat().st_mtime), dt.timezone.utc)
    digest = hashlib.sha256(raw_bytes + (label or "").encode()).hexdigest()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", model.label).strip("-")[:40]
    config = data.get("config", {})
    return RunRecord(
        run_id=f"{created:%Y%m%d-%H%M%S}-lmeval-{slug}-{digest[:8]}",
        created_at=created.isoformat(),
        harness=HarnessInfo(name="lm-eval", version=data.get("lm_eval_version"), git_commit=data.get("git_hash")),
        imported=ImportInfo.model_validate({
            "from": "lm-eval", "results_file": results_file.name, "sha256": digest,
            "samples_files": sorted(p.name for t, p in sample_paths.items() if t in samples)}),
        model=model,
        settings=RunSettings(
            limit=config.get("limit"), seed=config.get("fewshot_seed"), batch_size=config.get("batch_size"),
            style=PromptStyleSettings(apply_chat_template=data.get("chat_template") is not None,
                                      system_prompt=data.get("system_instruction")),
            gen_kwargs=config.get("gen_kwargs"),
        ),
        tasks=tasks,
        usage=RunUsage(),  # lm-eval records no cost, latency or throughput
        wall_time_s=_number(data.get("total_evaluation_time_seconds")),
    ).with_samples(samples)


def find_results_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(path.rglob("results_*.json"))
    raise UserError(f"{path} does not exist; give an lm-eval results_*.json file or its --output_path folder")


def import_lm_eval(path: str | Path, results: str | Path = "results", label: str | None = None,
                   join: Callable[[RunRecord], Any] | None = None) -> ImportResult:
    """Import every lm-eval results file under `path` into the results store `results`. `join`
    may rename, in place, the tasks of each converted record that are the same measurement as an
    evalboard task (see evalboard.engine.lm_eval_join) before it is saved."""
    files = find_results_files(Path(path))
    if not files:
        raise UserError(f"no results_*.json under {path}; point at lm-eval's --output_path folder")
    results = Path(results)
    check_writable(results)
    imported, skipped = [], []
    for file in files:
        record = convert_results_file(file, label)
        if (results / record.run_id / "run.json").is_file():
            skipped.append(record.run_id)
            continue
        if join is not None:
            join(record)
        saved = save_run(results, record).path
        assert saved is not None  # save_run sets where it wrote the run
        imported.append(saved)
    return ImportResult(imported, skipped)
