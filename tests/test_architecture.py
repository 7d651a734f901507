"""The import rules of docs/architecture.md, held on the source: every `import` and
`from ... import` in the package (function-level and TYPE_CHECKING ones included), by stage."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = {"harness": "evalboard", "tasks": "evalboard.tasks", "leaderboard": "evalboard.leaderboard"}
CORE = {"errors", "fingerprint", "paths", "requests", "stats", "atomic", "suites"}
# stage -> the stages it may import (the core is always allowed)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "taskdef": {"tasks"},
    "tasks": {"taskdef", "execution"},
    "models": set(),
    "execution": set(),
    "records": set(),
    # the nightly update (engine) runs the board's arenas too
    "engine": {"taskdef", "tasks", "models", "execution", "records", "comparison", "leaderboard", "arena"},
    "comparison": {"records"},
    "leaderboard": {"records"},
    "arena": {"models", "records", "leaderboard"},
    "cli": {"taskdef", "tasks", "models", "execution", "records", "engine", "comparison", "leaderboard", "arena"},
    # evalboard/__init__.py re-exports the public surface (lazily); `import evalboard` is allowed anywhere
    "package": {"engine", "records", "taskdef", "comparison"},
}


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "evalboard":
        return None
    if len(parts) == 1:
        return "package"
    return "core" if parts[1] in CORE else parts[1]


def _module_name(file: Path, root: Path, folder: str) -> str:
    relative = file.relative_to(root / folder).with_suffix("")
    return ".".join([PACKAGE_DIRS[folder], *relative.parts]).removesuffix(".__init__")


def import_graph(root: Path = REPO) -> dict[tuple[str, str], set[str]]:
    """(from stage, to stage) -> the modules with such an import."""
    edges: dict[tuple[str, str], set[str]] = defaultdict(set)
    for folder in PACKAGE_DIRS:
        for file in (root / folder).rglob("*.py"):
            module = _module_name(file, root, folder)
            source = stage_of(module)
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    # `from evalboard import stats` imports evalboard.stats
                    targets = [f"{node.module}.{alias.name}" for alias in node.names] if node.module == "evalboard" \
                        else [node.module]
                else:
                    continue
                for target in targets:
                    destination = stage_of(target)
                    if source and destination and destination != source:
                        edges[(source, destination)].add(module)
    return edges


def test_stages_import_only_what_the_architecture_allows() -> None:
    edges = import_graph()
    assert edges, "the parser found no imports at all"
    forbidden = {
        f"{src} -> {dst} ({', '.join(sorted(modules))})"
        for (src, dst), modules in edges.items()
        if dst not in ("core", "package") and dst not in ALLOWED[src]
    }
    assert not forbidden, "imports that cross the architecture's lines:\n" + "\n".join(sorted(forbidden))


NEVER = {
    "leaderboard": {"models", "engine", "execution", "taskdef"},  # reads stored results only
    "taskdef": {"models"},  # a task knows requests, not adapters
    "tasks": {"models"},
    "models": {"taskdef", "tasks", "engine"},  # an adapter knows requests, not tasks
}


@pytest.mark.parametrize("stage", sorted(NEVER))
def test_the_nevers(stage: str) -> None:
    reached = {dst for (src, dst) in import_graph() if src == stage}
    assert not reached & NEVER[stage]


def test_the_checker_sees_a_forbidden_import_inside_a_function(tmp_path: Path) -> None:
    """The rules are not vacuous: an adapter import hidden in a task-side function is found."""
    (tmp_path / "harness" / "taskdef").mkdir(parents=True)
    (tmp_path / "tasks").mkdir()
    (tmp_path / "leaderboard").mkdir()
    (tmp_path / "harness" / "taskdef" / "sneaky.py").write_text(
        "def f():\n    from evalboard.models.adapters.hf import HFAdapter\n    return HFAdapter\n")
    assert import_graph(tmp_path) == {("taskdef", "models"): {"evalboard.taskdef.sneaky"}}


def test_no_task_name_in_the_engine() -> None:
    from evalboard.taskdef.registry import discover_tasks

    names = set(discover_tasks())
    engine_files = [f for f in (REPO / "harness").rglob("*.py")]
    offenders = []
    for file in engine_files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                offenders.append(f"{file.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert not offenders, offenders


def test_the_public_surface_resolves_and_importing_it_is_light() -> None:
    import subprocess
    import sys

    import evalboard

    for name in evalboard.__all__:
        assert getattr(evalboard, name) is not None, name
    code = "import sys, evalboard; print(sorted(m for m in ('torch', 'pandas', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_package_folder_is_listed_for_installation() -> None:
    """pyproject lists packages by hand (the folders are not named like the import names): a
    folder missing there would be absent from a non-editable install."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {
        _module_name(init, REPO, folder)
        for folder in PACKAGE_DIRS
        for init in (REPO / folder).rglob("__init__.py")
    }
    assert found == listed
