"""`evalboard leaderboard update --config leaderboard.yaml`: evaluate only what is missing or stale,
then rebuild the page. Meant for a nightly cron job or a scheduled CI workflow (docs/nightly.md).

A (model, task) cell is evaluated when the model's newest run of that task (same few-shot count)
- does not exist (missing), or
- ran another model spec, or a task fingerprint other than the one the config gives now (the task's
  definition, data, few-shot pool, seed, prompt style, generation settings, the requests themselves
  or the code that builds and scores them changed), or other items (a different limit), or had
  failed items, or
- ran a model whose fingerprint differs from the model's current one.

Task fingerprints are computed without the model: the task is prepared (data only) and its
formulation fixed to the one the run recorded, which is what the model's capabilities gave then.
The model fingerprint needs the model loaded (it hashes weights, adapter, tokenizer...), so it is
checked lazily: with `check_model_fingerprint: auto` (default) the model is loaded only when a
local file it is built from (model folder, GGUF file, LoRA adapter folder...) was modified after
the oldest of its up-to-date runs; hosted and Hub models are taken as unchanged (pin a Hub
`revision=` or use `always`). `always` loads every model each time; `never` trusts the store.
Whenever an evaluation runs anyway, the fingerprint it records is compared with the model's other
cells, and those that differ are evaluated too.

Only one update runs at a time per results store (an fcntl lock); what failed is recorded in the
store and shown on the page; one failing model does not stop the others.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TextIO

import yaml
from evalboard.atomic import write_text_atomic
from evalboard.engine.nightly_arenas import ArenaEntry, describe_arenas, update_arenas
from evalboard.engine.options import (
    NonEmptyStr,
    NonNegativeInt,
    RunOptions,
    StrictInt,
    StrictStr,
    config_keys,
    dotted,
    error_line,
)
from evalboard.errors import UserError
from evalboard.fingerprint import stable_hash
from evalboard.leaderboard.build import DEFAULT_TITLE, STATE_DIR, build_leaderboard, status_path
from evalboard.records.run_record import RunRecord, TaskResult
from evalboard.records.store import list_runs
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError, PydanticUseDefault

# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------


class _Section(BaseModel):
    """A part of the config that sets run options (RunOptions' fields, strictly validated)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    _identity: ClassVar[set[str]] = set()  # keys that name the entry rather than set an option

    def options(self) -> dict[str, Any]:
        """The evaluate() keywords this section gives (only those written in the config)."""
        return self.model_dump(exclude_unset=True, exclude=self._identity)


def _options_section(name: str, section: str, base: type[_Section], doc: str) -> Any:
    """`base` plus the RunOptions fields a config may set in `section`, with their types and checks."""
    fields: dict[str, Any] = {key: (RunOptions.model_fields[key].annotation, RunOptions.model_fields[key])
                              for key in config_keys(section)}
    return create_model(name, __base__=base, __doc__=doc, __module__=__name__, **fields)


class _ModelBase(_Section):
    model_config = ConfigDict(json_schema_extra={"allowed": "a model spec or a mapping with spec: and model options"})
    _identity: ClassVar[set[str]] = {"spec", "label"}
    spec: NonEmptyStr
    if TYPE_CHECKING:
        label: str  # from RunOptions, defaulted to the spec below

    @model_validator(mode="before")
    @classmethod
    def _from_spec(cls, data: Any) -> Any:
        """A bare string is a spec; the label defaults to the spec."""
        data = {"spec": data} if isinstance(data, str) else data
        if isinstance(data, dict) and isinstance(data.get("spec"), str) and data.get("label") is None:
            data = {**data, "label": data["spec"]}
        return data


class _TaskBase(_Section):
    model_config = ConfigDict(json_schema_extra={"allowed": "a task name or a mapping with name: and task options"})
    _identity: ClassVar[set[str]] = {"name"}
    name: NonEmptyStr

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data


if TYPE_CHECKING:  # mypy sees the bases; at run time the classes also carry RunOptions' fields
    Defaults = _Section
    ModelEntry = _ModelBase
    TaskEntry = _TaskBase
else:
    Defaults = _options_section("Defaults", "defaults", _Section, "`defaults:`: options for every cell.")
    ModelEntry = _options_section("ModelEntry", "models", _ModelBase, "A `models:` entry and its own options.")
    TaskEntry = _options_section("TaskEntry", "tasks", _TaskBase, "A `tasks:` entry and its own options.")


def _empty_is_default(value: Any) -> Any:
    """`defaults:` or `include_paths:` written with nothing after it means the default."""
    if value is None:
        raise PydanticUseDefault()
    return value


class NightlyConfig(BaseModel):
    """leaderboard.yaml (docs/nightly.md). Relative paths are relative to the config's folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    results: Path = Field(Path("results"), validate_default=True)
    output: Path = Field(Path("results/leaderboard/index.html"), validate_default=True)
    title: StrictStr = DEFAULT_TITLE
    bootstrap_rounds: NonNegativeInt = 1000
    bootstrap_seed: StrictInt = 0
    include_paths: Annotated[list[Path], BeforeValidator(_empty_is_default)] = []
    check_model_fingerprint: Literal["auto", "always", "never"] = "auto"
    defaults: Annotated[Defaults, BeforeValidator(_empty_is_default)] = Defaults()
    models: list[ModelEntry] = Field(
        min_length=1, json_schema_extra={"allowed": "a non-empty list of model specs or mappings with spec:"})
    tasks: list[TaskEntry] = Field(
        min_length=1, json_schema_extra={"allowed": "a non-empty list of task names or mappings with name:"})
    arenas: Annotated[list[ArenaEntry], BeforeValidator(_empty_is_default)] = []
    _path: Path = PrivateAttr(default=Path("leaderboard.yaml"))

    @field_validator("results", "output", "include_paths")
    @classmethod
    def _relative_to_config(cls, value: Any, info: ValidationInfo) -> Any:
        base = (info.context or {}).get("base", Path("."))
        return [base / p for p in value] if isinstance(value, list) else base / value

    @model_validator(mode="after")
    def _distinct_labels(self) -> NightlyConfig:
        labels = [m.label for m in self.models]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise PydanticCustomError("evalboard", "model label(s) {labels} appear twice in models:; give each "
                                      "a distinct `label:`", {"labels": ", ".join(duplicates)})
        return self

    @property
    def path(self) -> Path:
        return self._path

    def options_for(self, model: Any, task: Any) -> dict[str, Any]:
        """evaluate() keywords for one cell: defaults, then the task's, then the model's."""
        return {**self.defaults.options(), **task.options(), **model.options()}


def _config_path_text(raw: dict[str, Any]) -> Any:
    """Field paths for errors, naming the entry: `tasks[1] (mmlu).limit`."""

    def text(loc: Sequence[str | int]) -> str:
        out = dotted(loc)
        if len(loc) >= 2 and loc[0] in ("models", "tasks") and isinstance(loc[1], int):
            entries = raw.get(loc[0])
            item = entries[loc[1]] if isinstance(entries, list) and loc[1] < len(entries) else None
            name = item.get("spec" if loc[0] == "models" else "name") if isinstance(item, dict) else None
            if isinstance(name, str):
                head = f"{loc[0]}[{loc[1]}] ({name})"
                out = head + out[len(f"{loc[0]}[{loc[1]}]"):]
        return out

    return text


def load_config(path: str | Path) -> NightlyConfig:
    """Read and validate leaderboard.yaml strictly; any problem is one UserError line naming the
    file, the field and what it allows."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist; pass --config PATH (see docs/nightly.md)") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise UserError(f"config file {path} must be a YAML mapping with `models:` and `tasks:`")
    try:
        config = NightlyConfig.model_validate(raw, context={"base": path.resolve().parent})
    except ValidationError as exc:
        raise UserError(error_line(exc, NightlyConfig, str(path), dialect="yaml",
                                   path_text=_config_path_text(raw))) from None
    config._path = path
    _check_model_schemes(config)
    return config


def with_executor(config: NightlyConfig, executor: str | None, ray_address: str | None) -> NightlyConfig:
    """The config with `leaderboard update --executor/--ray-address` put over its `defaults:`."""
    given = {key: value for key, value in (("executor", executor), ("ray_address", ray_address)) if value is not None}
    try:
        defaults = type(config.defaults).model_validate({**config.defaults.options(), **given})
    except ValidationError as exc:
        raise UserError(error_line(exc, type(config.defaults), "leaderboard update", dialect="cli")) from None
    return config.model_copy(update={"defaults": defaults})


def _check_model_schemes(config: NightlyConfig) -> None:
    """A spec no adapter serves is a config error, found before planning (a dry run would
    otherwise plan it as "evaluate" and the real run fail on it)."""
    from evalboard.models.adapters.base import ModelSpec, check_scheme

    for index, model in enumerate(config.models):
        try:
            check_scheme(ModelSpec.parse(model.spec))
        except UserError as exc:
            raise UserError(f"{config.path}: models[{index}] ({model.spec}): {exc}") from None


# ---------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------


@dataclass
class CellPlan:
    model: ModelEntry
    task: TaskEntry
    action: str  # "evaluate" | "fresh" | "error"
    reason: str
    run_id: str | None = None
    model_fp: str | None = None
    created_at: str | None = None
    shots: int | None = None  # the few-shot count this cell resolves to


@dataclass
class ModelCheck:
    model: ModelEntry
    needed: bool
    reason: str
    files_mtime: float = 0.0  # newest modification time among the model's local files


@dataclass
class Plan:
    cells: list[CellPlan]
    checks: list[ModelCheck]

    def to_evaluate(self) -> list[CellPlan]:
        return [c for c in self.cells if c.action == "evaluate"]

    def describe(self) -> str:
        width = max((len(c.model.label) for c in self.cells), default=5)
        lines = []
        for cell in self.cells:
            where = f" (run {cell.run_id})" if cell.run_id and cell.action == "fresh" else ""
            lines.append(f"  {cell.model.label:<{width}}  {cell.task.name:<16} {cell.action:<9} {cell.reason}{where}")
        for check in self.checks:
            if check.needed:
                lines.append(f"  {check.model.label:<{width}}  {'(model)':<16} {'check':<9} {check.reason}"
                             " (or learned from a run it needs anyway)")
        todo, fresh = len(self.to_evaluate()), sum(c.action == "fresh" for c in self.cells)
        errors = sum(c.action == "error" for c in self.cells)
        checks = sum(c.needed for c in self.checks)
        lines.append(f"{todo} to evaluate, {fresh} up to date, {errors} with config errors, "
                     f"{checks} model fingerprint check(s)")
        return "\n".join(lines)


def _expected_fingerprint(prepared: Any, formulation: str, model_name: str) -> str:
    """The task fingerprint a run would record now, given the formulation the model got last time."""
    from evalboard.models.adapters.base import Capabilities
    from evalboard.taskdef.prepared import choose_formulation

    task = dataclasses.replace(prepared, formulation=None, fewshot_by_doc={})
    capabilities = Capabilities(loglikelihood=formulation == "loglikelihood", generate=True, chat=True)
    choose_formulation(task, capabilities, model_name)
    return task.fingerprint()


def _newest_runs(results: Path) -> dict[tuple[str, str, int], tuple[RunRecord, TaskResult]]:
    """(model label, task, few-shot) -> the newest run of it in the store."""
    newest: dict[tuple[str, str, int], tuple[RunRecord, TaskResult]] = {}
    if not results.is_dir():
        return newest
    for record in list_runs(results):  # oldest first: later ones replace earlier ones
        label = record.model.label or record.model.spec
        for task, entry in record.tasks.items():
            newest[(label, task, entry.num_fewshot)] = (record, entry)
    return newest


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text if isinstance(exc, UserError) else f"{type(exc).__name__}: {text}"
    return text[:400]


def _plan_cell(config: NightlyConfig, model: ModelEntry, task: TaskEntry, specs: dict[str, Any],
               prepared_cache: dict[tuple[str, str], Any], newest: dict) -> CellPlan:
    from evalboard.taskdef.prepared import prepare_task

    options = config.options_for(model, task)
    try:
        if task.name not in specs:
            raise UserError(f"unknown task {task.name}; run `evalboard tasks` to list them")
        task_options = RunOptions.parse(options, where=str(config.path)).task_options()
        key = (task.name, repr(task_options))
        if key not in prepared_cache:
            prepared_cache[key] = prepare_task(specs[task.name], task_options)
        prepared = prepared_cache[key]
    except Exception as exc:  # data or config problems: this cell can't run; the rest can
        return CellPlan(model, task, "error", _one_line(exc))
    found = newest.get((model.label, task.name, prepared.num_fewshot))
    if found is None:
        return CellPlan(model, task, "evaluate", "missing: no run yet", shots=prepared.num_fewshot)
    record, entry = found
    recorded = record.model
    plan = CellPlan(model, task, "fresh", "up to date", record.run_id, recorded.fingerprint,
                    record.created_at, prepared.num_fewshot)
    try:
        expected = _expected_fingerprint(prepared, entry.formulation, model.label)
    except Exception as exc:
        return CellPlan(model, task, "error", _one_line(exc))
    if recorded.spec != model.spec:
        plan.action, plan.reason = "evaluate", f"stale: the newest run used spec {recorded.spec}"
    elif entry.task_fingerprint != expected:
        plan.action, plan.reason = "evaluate", "stale: task fingerprint changed (definition, data, prompts, settings or scoring code)"
    elif entry.items_hash != stable_hash([d["id"] for d in prepared.docs]):
        plan.action, plan.reason = "evaluate", f"stale: other items (ran {entry.n_items}, now {len(prepared.docs)})"
    elif entry.failed_items > 0:
        plan.action, plan.reason = "evaluate", f"incomplete: {entry.failed_items} items failed last time"
    return plan


def _local_files(spec: str) -> list[Path]:
    """Local files a model spec is built from (its target and any option that is a path)."""
    from evalboard.models.adapters.base import ModelSpec

    parsed = ModelSpec.parse(spec)
    files: list[Path] = []
    for value in [parsed.target, *parsed.options.values()]:
        path = Path(value).expanduser()
        if not value or not path.exists():
            continue
        files.extend(p for p in ([path] if path.is_file() else sorted(path.rglob("*"))) if p.is_file())
    return files


def _checks_path(results: Path) -> Path:
    """Fingerprints verified by earlier checks, so an unchanged model is not loaded every night."""
    return Path(results) / STATE_DIR / "model-checks.json"


def _read_checks(results: Path) -> dict[str, Any]:
    try:
        return json.loads(_checks_path(results).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _model_check(config: NightlyConfig, model: ModelEntry, fresh: list[CellPlan], memo: dict[str, Any]) -> ModelCheck:
    if not fresh or config.check_model_fingerprint == "never":
        return ModelCheck(model, False, "not needed")
    if config.check_model_fingerprint == "always":
        return ModelCheck(model, True, "check_model_fingerprint: always")
    oldest = min(dt.datetime.fromisoformat(c.created_at or "") for c in fresh)
    try:
        files = _local_files(model.spec)
    except UserError:
        files = []
    newest_file = max(files, key=lambda p: p.stat().st_mtime, default=None)
    modified = newest_file.stat().st_mtime if newest_file is not None else 0.0
    if modified <= oldest.timestamp():
        return ModelCheck(model, False, "no local model file changed", modified)
    seen = memo.get(model.label) or {}
    if seen.get("files_mtime", -1.0) >= modified and all(c.model_fp == seen.get("fingerprint") for c in fresh):
        return ModelCheck(model, False, "files unchanged since the last check confirmed the fingerprint", modified)
    return ModelCheck(model, True, f"{newest_file} changed after {oldest.isoformat()}: "
                                   "load the model to compare its fingerprint", modified)


def make_plan(config: NightlyConfig) -> Plan:
    from evalboard.taskdef.registry import discover_tasks

    specs = discover_tasks(config.include_paths)
    newest = _newest_runs(config.results)
    memo = _read_checks(config.results)
    prepared_cache: dict[tuple[str, str], Any] = {}
    seen: set[tuple[str, str, int]] = set()
    cells, checks = [], []
    for model in config.models:
        row = []
        for task in config.tasks:
            cell = _plan_cell(config, model, task, specs, prepared_cache, newest)
            if cell.shots is not None:
                key = (model.label, task.name, cell.shots)
                if key in seen:
                    raise UserError(f"task {task.name} is listed twice with {cell.shots}-shot; "
                                    f"give the entries different num_fewshot or drop one")
                seen.add(key)
            row.append(cell)
        cells.extend(row)
        checks.append(_model_check(config, model, [c for c in row if c.action == "fresh"], memo))
    return Plan(cells, checks)


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


@contextmanager
def update_lock(results: Path) -> Iterator[None]:
    """Hold the store's update lock, or fail at once with a one-line error (exit code 2)."""
    lock_path = Path(results) / STATE_DIR / "update.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise UserError(
                f"another `evalboard leaderboard update` is already running on {results} (pid {holder}, "
                f"lock {lock_path}); wait for it to finish, then run again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock


def _current_fingerprint(config: NightlyConfig, model: ModelEntry) -> str:
    from evalboard.models.adapters.base import ModelSpec, load_adapter

    options = RunOptions.parse({**config.defaults.options(), **model.options()}, where=str(config.path))
    adapter = load_adapter(ModelSpec.parse(model.spec), options.adapter_settings())
    try:
        return stable_hash(adapter.fingerprint())
    finally:
        adapter.close()


def _remember_check(results: Path, label: str, fingerprint: str, files_mtime: float) -> None:
    memo = _read_checks(results)
    memo[label] = {"fingerprint": fingerprint, "files_mtime": files_mtime}
    write_text_atomic(_checks_path(results), json.dumps(memo, indent=2, sort_keys=True) + "\n")


@dataclass
class UpdateResult:
    evaluated: list[tuple[str, str]]  # (model label, task)
    failures: list[dict[str, Any]]
    page: Path | None
    arena_battles: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (arena, model label)


def _evaluate_model(config: NightlyConfig, model: ModelEntry, todo: list[CellPlan], fresh: list[CellPlan],
                    check: ModelCheck, log: TextIO) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    from evalboard.engine.api import evaluate

    evaluated: list[tuple[str, str]] = []
    failures: list[dict[str, Any]] = []
    queue = list(todo)
    if check.needed and not todo:  # with something to evaluate, that run tells the fingerprint anyway
        try:
            current = _current_fingerprint(config, model)
        except Exception as exc:
            failures.append({"model": model.label, "tasks": ["(model fingerprint check)"], "error": _one_line(exc)})
            print(f"{model.label}: could not load the model to check its fingerprint: {_one_line(exc)}", file=log)
            return evaluated, failures
        _remember_check(config.results, model.label, current, check.files_mtime)
        changed = [c for c in fresh if c.model_fp != current]
        for cell in changed:
            cell.action, cell.reason = "evaluate", "stale: model fingerprint changed"
        queue += changed
        fresh = [c for c in fresh if c not in changed]
    done: set[str] = set()
    while queue:
        groups: dict[str, tuple[dict[str, Any], list[CellPlan]]] = {}
        for cell in queue:  # cells with the same options run together
            options = config.options_for(model, cell.task)
            groups.setdefault(json.dumps(options, sort_keys=True, default=str), (options, []))[1].append(cell)
        queue = []
        for key in sorted(groups):
            options, cells = groups[key]
            names = [c.task.name for c in cells]
            print(f"{model.label}: evaluating {', '.join(names)}", file=log, flush=True)
            try:
                record = evaluate(model.spec, names, output_dir=config.results, label=model.label,
                                  include_paths=config.include_paths, **options)
            except Exception as exc:  # one model (or task group) failing must not stop the others
                failures.append({"model": model.label, "tasks": names, "error": _one_line(exc)})
                print(f"{model.label}: FAILED {', '.join(names)}: {_one_line(exc)}", file=log, flush=True)
                if not isinstance(exc, UserError):
                    traceback.print_exc(file=log)
                continue
            evaluated += [(model.label, n) for n in names]
            done.update(names)
            learned = record.model.fingerprint
            if check.needed:
                _remember_check(config.results, model.label, learned, check.files_mtime)
            # The run just made tells the model's current fingerprint: older cells under another are stale.
            stale = [c for c in fresh if c.model_fp != learned and c.task.name not in done]
            for cell in stale:
                cell.action, cell.reason = "evaluate", "stale: model fingerprint changed"
            queue += stale
            fresh = [c for c in fresh if c not in stale]
    return evaluated, failures


def _cache_path(config: NightlyConfig) -> Path | None:
    """The response cache the board's defaults name (the arenas' answers and judgments go there)."""
    return RunOptions(**{k: v for k, v in config.defaults.options().items() if k == "cache"}).cache_path()


def _on_cluster(config: NightlyConfig, model: ModelEntry, cells: list[CellPlan]) -> bool:
    return any(config.options_for(model, cell.task).get("executor") == "ray" for cell in cells)


def _evaluate_models(config: NightlyConfig, plan: Plan, log: TextIO) -> dict[str, tuple[list[tuple[str, str]],
                                                                                       list[dict[str, Any]]]]:
    """Each model with something to do, evaluated. The models that run on a Ray cluster run at
    once, each in a thread of its own driving its replicas (Ray places them on the nodes); the
    others run one after another here, beside them, as they share this machine."""
    work = []
    for model, check in zip(config.models, plan.checks):
        row = [c for c in plan.cells if c.model == model]
        todo = [c for c in row if c.action == "evaluate"]
        fresh = [c for c in row if c.action == "fresh"]
        if todo or check.needed:
            work.append((model, todo, fresh, check))
    clustered = [item for item in work if _on_cluster(config, item[0], item[1] or item[2])]
    here = [item for item in work if item not in clustered]
    outcomes = {}
    with ThreadPoolExecutor(max_workers=max(1, len(clustered)), thread_name_prefix="evalboard-model") as pool:
        running = {item[0].label: pool.submit(_evaluate_model, config, *item, log) for item in clustered}
        for item in here:
            outcomes[item[0].label] = _evaluate_model(config, *item, log)
        outcomes.update({label: future.result() for label, future in running.items()})
    return outcomes


def _write_status(results: Path, failures: list[dict[str, Any]]) -> None:
    ordered = sorted(failures, key=lambda f: (f["model"], f["tasks"], f["error"]))
    write_text_atomic(status_path(results), json.dumps({"failures": ordered}, indent=2, sort_keys=True) + "\n")


def run_update(config: NightlyConfig, *, dry_run: bool = False, log: TextIO = sys.stdout) -> UpdateResult:
    """Plan, evaluate what is missing or stale, record failures, rebuild the page."""
    if dry_run:
        plan = make_plan(config)
        print(f"plan for {config.path} (results {config.results}, page {config.output}):", file=log)
        print(plan.describe(), file=log)
        for line in describe_arenas(config.arenas, [m.label for m in config.models], config.results):
            print(line, file=log)
        return UpdateResult([], [], None)
    config.results.mkdir(parents=True, exist_ok=True)
    with update_lock(config.results):
        plan = make_plan(config)
        print(plan.describe(), file=log, flush=True)
        evaluated: list[tuple[str, str]] = []
        failures = [{"model": c.model.label, "tasks": [c.task.name], "error": c.reason}
                    for c in plan.cells if c.action == "error"]
        outcomes = _evaluate_models(config, plan, log)
        for model in config.models:  # in the config's order, however the models were run
            done, failed = outcomes.get(model.label, ([], []))
            evaluated += done
            failures += failed
        battled, failed = update_arenas(config.arenas, {m.label: m.spec for m in config.models}, config.results,
                                        _cache_path(config), log)
        failures += failed
        _write_status(config.results, failures)
        report = build_leaderboard(config.results, config.output, rounds=config.bootstrap_rounds, seed=config.bootstrap_seed,
                                   title=config.title)
        placed = f", {len(battled)} model(s) placed in arenas" if config.arenas else ""
        print(f"evaluated {len(evaluated)} cell(s){placed}, {len(failures)} failure(s); page {report.page}", file=log)
        return UpdateResult(evaluated, failures, report.page, battled)
