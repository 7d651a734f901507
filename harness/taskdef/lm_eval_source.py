"""Reading data out of the installed lm-eval package's task folder, without importing lm_eval
(its task registry is slow to import, and its MATH utilities need optional packages at import):
fixed few-shot exemplars, descriptions and prompts are then lm-eval's own, not copies of them.

- `task_dir(*parts)`: a folder under `lm_eval/tasks/`, located with `find_spec`.
- `returned_literal(path, function)`: the literal a module-level function returns (MATH's
  `list_fewshot_samples`), found by parsing the file, never by running it.
- `task_file(path)`: one lm-eval task YAML file as data (no `!function` tags resolved).
"""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from evalboard.errors import UserError

_REINSTALL = "reinstall `lm-eval==0.4.13`"


def task_dir(*parts: str) -> Path:
    """`lm_eval/tasks/<parts>` of the installed lm-eval, or a one-line error saying to install it."""
    try:
        spec = importlib.util.find_spec("lm_eval")
    except (ImportError, ValueError):
        spec = None
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root, "tasks", *parts)
        if path.is_dir():
            return path
    raise UserError(f"this task reads its prompts from lm-eval's task folder tasks/{'/'.join(parts)}, and "
                    f"lm-eval is not installed there: `pip install 'lm-eval==0.4.13'`")


@cache
def returned_literal(path: Path, function: str) -> Any:
    """What `def function(): return <literal>` in `path` returns, read with `ast.literal_eval`."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        body = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == function).body
        returned = next(node for node in body if isinstance(node, ast.Return))
        return ast.literal_eval(returned.value)  # type: ignore[arg-type]
    except (OSError, SyntaxError, StopIteration, ValueError) as exc:
        raise UserError(f"could not read {function}() from {path} ({type(exc).__name__}); {_REINSTALL}") from None


class _IgnoreTags(yaml.SafeLoader):
    pass


_IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: None)


@cache
def task_file(path: Path) -> dict[str, Any]:
    """One lm-eval task file as a mapping (tags such as `!function` read as None)."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_IgnoreTags)  # noqa: S506 - a safe loader
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"could not read lm-eval's task file {path} ({type(exc).__name__}); {_REINSTALL}") from None
    if not isinstance(data, dict):
        raise UserError(f"lm-eval's task file {path} is not a mapping; {_REINSTALL}")
    return data
