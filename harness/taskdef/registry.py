"""Find task files: the project's own (`evalboard.tasks`) and any directories a user adds with
--include-path. A task is one YAML file; nothing has to be registered by hand."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
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
    """All task specs by name; a user's directory may add tasks or override ours by name."""
    specs: dict[str, TaskSpec] = {}
    for directory in [_builtin_dir(), *include_paths]:
        directory = Path(directory)
        if not directory.is_dir():
            raise UserError(f"--include-path {directory} is not a directory of task YAML files")
        for path in sorted(directory.glob("*.yaml")):
            spec = load_task_spec(path)
            specs[spec.name] = spec
    return specs


def resolve_task_names(requested: Sequence[str], available: dict[str, TaskSpec]) -> list[str]:
    """The tasks asked for, suites (`open_llm_v2`) replaced by their members; a suite's members
    that are not in the catalogue are named on stderr and the others run."""
    requested, missing = expand_suites(list(requested), available)
    for suite, absent in missing.items():
        logger.warning("warning: suite %s: %d member task(s) are not in the catalogue yet, so its average "
                       "will not be computed: %s", suite, len(absent), ", ".join(absent))
    unknown = [name for name in requested if name not in available]
    if unknown:
        raise UserError(
            f"unknown task(s): {', '.join(unknown)}; run `evalboard tasks` to list them "
            f"(available: {', '.join(sorted(available))})"
        )
    return list(dict.fromkeys(requested))


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
