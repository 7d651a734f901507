"""Find task files: the project's own (`evalboard.tasks`) and any directories a user adds with
--include-path. A task is one YAML file; nothing has to be registered by hand."""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import importlib.util
import logging
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from evalboard.errors import UserError
from evalboard.suites import expand_suites
from evalboard.taskdef.spec import TaskSpec, load_task_spec

logger = logging.getLogger(__name__)


def _builtin_dir() -> Path:
    import evalboard.tasks

    return Path(evalboard.tasks.__file__).resolve().parent


def discover_tasks(include_paths: Sequence[Path] = ()) -> dict[str, TaskSpec]:
    """All task specs by name; a user's directory may add tasks or override ours by name. A group
    (`subtasks:`) brings its members along: MMLU is `mmlu` and the 57 `mmlu_<subject>` tasks."""
    specs: dict[str, TaskSpec] = {}
    for directory in [_builtin_dir(), *include_paths]:
        directory = Path(directory)
        if not directory.is_dir():
            raise UserError(f"--include-path {directory} is not a directory of task YAML files")
        for path in sorted(directory.glob("*.yaml")):
            spec = load_task_spec(path)
            specs[spec.name] = spec
            for member in group_members(spec):
                specs.setdefault(member.name, member)
    return specs


def group_members(group: TaskSpec) -> list[TaskSpec]:
    """A group's member tasks, one per Hub config: `<group>_<config>` asks and scores exactly as the
    group does, on that config's items only (so the group's numbers are its members' pooled)."""
    if group.subtasks != "per_hub_config":
        return []
    if group.data.hub is None or not group.data.hub.configs:
        raise UserError(f"task file {group.source_file}: `subtasks: per_hub_config` needs `data.hub.configs`")
    return [
        group.model_copy(update={
            "name": f"{group.name}_{config}",
            "description": f"{group.description.split(':')[0]}: {config.replace('_', ' ')} (member of {group.name})",
            "mirrors": f"lm-eval {group.name}_{config}",
            "data": group.data.only_config(config),
            "group_field": None,
            "subtasks": None,
            "subtask_of": group.name,
        })
        for config in group.data.hub.configs
    ]


_GLOB = re.compile(r"[*?\[]")


def split_task_names(requested: str | Sequence[str]) -> list[str]:
    """`--tasks a,b`, `--tasks a b` and `["a", "b,c"]` alike: the names, in order."""
    parts = [requested] if isinstance(requested, str) else list(requested)
    return [name for part in parts for name in re.split(r"[,\s]+", part) if name]


def resolve_task_names(requested: str | Sequence[str], available: dict[str, TaskSpec]) -> list[str]:
    """The tasks asked for, in order and each once: names (a group is a name too), suites
    (`open_llm_v2`, replaced by their members; members not in the catalogue yet are named on
    stderr and the others run) and globs (`"mmlu_*"`, matched against every task name, sorted)."""
    names: list[str] = []
    unknown: list[str] = []
    expanded, missing = expand_suites(split_task_names(requested), available)
    for suite, absent in missing.items():
        logger.warning("warning: suite %s: %d member task(s) are not in the catalogue yet, so its average "
                       "will not be computed: %s", suite, len(absent), ", ".join(absent))
    for name in expanded:
        if _GLOB.search(name):
            matched = fnmatch.filter(sorted(available), name)
            names.extend(matched)
            if not matched:
                unknown.append(f"{name} (matches no task)")
        elif name in available:
            names.append(name)
        else:
            unknown.append(name)
    if unknown:
        raise UserError(
            f"unknown task(s): {', '.join(unknown)}; run `evalboard tasks` to list them "
            f"(available: {', '.join(sorted(n for n, s in available.items() if not s.subtask_of))}"
            f"{''.join(f', {n}_*' for n, s in sorted(available.items()) if s.subtasks)})"
        )
    return list(dict.fromkeys(names))


def hook_file(spec: TaskSpec) -> Path | None:
    """Where the task's `hooks:` module lives (beside its task file); None when it names none."""
    return spec.source_file.parent / f"{spec.hooks}.py" if spec.hooks else None


def _load_hook_module(spec: TaskSpec) -> ModuleType:
    directory = spec.source_file.parent
    if directory == _builtin_dir():
        return importlib.import_module(f"evalboard.tasks.{spec.hooks}")
    # A user's hook file is loaded under a private name so it never collides with (or shadows)
    # any importable module, ours or theirs.
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:12]
    module_name = f"_evalboard_user_tasks_{digest}_{spec.hooks}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    file = hook_file(spec)
    if file is None or not file.is_file():
        raise UserError(f"task {spec.name} names hooks {spec.hooks!r} but {file} does not exist")
    module_spec = importlib.util.spec_from_file_location(module_name, file)
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    return module


def has_hook(spec: TaskSpec, name: str) -> bool:
    return bool(spec.hooks) and callable(getattr(_load_hook_module(spec), name, None))


def hook(spec: TaskSpec, name: str) -> Callable[..., Any]:
    """A function from the task's hook module, or a one-line error saying what is missing."""
    if not spec.hooks:
        raise UserError(f"task {spec.name} needs a `hooks:` module providing {name}()")
    function = getattr(_load_hook_module(spec), name, None)
    if not callable(function):
        raise UserError(f"task {spec.name}: hook module {spec.hooks!r} has no function {name}()")
    return function
