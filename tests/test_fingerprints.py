"""A task fingerprint changes with everything that changes what the model is asked or how it is
scored (the task file, the prompt settings, the requests themselves, the scorer and filter code, the
formulation) and with nothing else; and the nightly planner re-evaluates a cell whose fingerprint
changed. Tasks are tiny files of our own in tmp_path; the model is the `chance:1` baseline."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import evalboard
import pytest
from evalboard import fingerprint
from evalboard.engine.nightly import load_config, make_plan
from evalboard.models.adapters.base import Capabilities
from evalboard.taskdef import prepared as prepared_module
from evalboard.taskdef.prepared import TaskOptions, choose_formulation, prepare_task
from evalboard.taskdef.prompting import PromptStyle
from evalboard.taskdef.registry import discover_tasks
from evalboard.taskdef.shapes import base as shape_base

ALL = Capabilities(loglikelihood=True, generate=True, chat=True)

MC_TASK = """\
name: fp_mc
description: "multiple choice: which word is the answer"
type: multiple_choice
hooks: fp_hooks
data:
  split: test
  fewshot_split: train
prompt:
  text: "Q: {{ question }}\\nA:"
  letter_text: "Q: {{ question }}\\n{{ lettered_choices }}A:"
num_fewshot: 0
"""

GEN_TASK = """\
name: fp_gen
description: "generate: write the answer"
type: generate
hooks: fp_hooks
scorer: score
data:
  split: test
  fewshot_split: train
prompt:
  text: "Q: {{ question }}\\nA:"
  target: "{{ choices[answer] }}"
generation: {max_new_tokens: 16, stop: ["\\n"]}
num_fewshot: 0
primary_metric: exact_match
"""

HOOKS = """\
def to_docs(rows, source_format):
    return [dict(row) for row in rows]


def score(doc, responses):
    return {"exact_match": float(responses[0].strip() == doc["choices"][doc["answer"]])}
"""


def _rows(split: str, n: int) -> list[dict[str, Any]]:
    return [{"id": f"{split}-{i}", "question": f"{split} question {i}?", "choices": ["red", "green", "blue"],
             "answer": i % 3} for i in range(n)]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


@dataclass
class Workspace:
    """A task directory (for --include-path) and a data directory (for --data-dir)."""

    root: Path

    @property
    def tasks(self) -> Path:
        return self.root / "tasks"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def fingerprint(self, task: str = "fp_mc", capabilities: Capabilities = ALL, **options: Any) -> str:
        """What a run of `task` would record, read afresh from the files."""
        prepared = prepare_task(discover_tasks([self.tasks])[task], TaskOptions(data_dir=self.data, **options))
        choose_formulation(prepared, capabilities, "a test model")
        return prepared.fingerprint()


def _write_workspace(root: Path) -> Workspace:
    space = Workspace(root)
    space.tasks.mkdir(parents=True)
    (space.tasks / "fp_mc.yaml").write_text(MC_TASK)
    (space.tasks / "fp_gen.yaml").write_text(GEN_TASK)
    (space.tasks / "fp_hooks.py").write_text(HOOKS)
    for task in ("fp_mc", "fp_gen"):
        for split, n in (("test", 6), ("train", 4)):
            (space.data / task).mkdir(parents=True, exist_ok=True)
            (space.data / task / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows(split, n)))
    return space


@pytest.fixture
def space(tmp_path: Path) -> Workspace:
    return _write_workspace(tmp_path / "space")


def _redirect_source(monkeypatch: pytest.MonkeyPatch, module: str, old: str, new: str) -> None:
    """As if `module`'s source file had `old` replaced by `new` (the fingerprint reads every
    module's source through fingerprint.module_code; the running code stays as it is)."""
    real = fingerprint.module_code

    def edited(name: str) -> fingerprint.ModuleCode:
        if name != module:
            return real(name)
        source = Path(importlib.util.find_spec(name).origin).read_text(encoding="utf-8")
        assert old in source, (module, old)
        return fingerprint.ModuleCode.parse(source.replace(old, new), name.rpartition(".")[0])

    monkeypatch.setattr(fingerprint, "module_code", edited)


def _assembled_differently(monkeypatch: pytest.MonkeyPatch) -> None:
    """A change to prompt assembly that only shows in what is asked (the source hash can't see a
    patched function): every plain prompt gains a trailing newline."""
    real = shape_base.assemble

    def assemble(*args: Any) -> Any:
        prompt = real(*args)
        return f"{prompt}\n" if isinstance(prompt, str) else prompt

    monkeypatch.setattr(shape_base, "assemble", assemble)


Edit = Callable[[Workspace, pytest.MonkeyPatch], None]


@dataclass
class Change:
    """One change that must move the fingerprint: options before and after, and/or an edit between."""

    task: str = "fp_mc"
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    edit: Edit | None = None
    capabilities: Capabilities = ALL


def _file_edit(relative: str, old: str, new: str) -> Edit:
    return lambda space, _: _edit(space.root / relative, old, new)


def _source_edit(module: str, old: str, new: str) -> Edit:
    return lambda _, patch: _redirect_source(patch, module, old, new)


TWO_SHOT = {"num_fewshot": 2}
CHANGES = {
    "prompt text template": Change(edit=_file_edit("tasks/fp_mc.yaml", '"Q: {{', '"Question: {{')),
    "system prompt": Change(after={"style": PromptStyle(False, "Answer briefly.")}),
    "chat style": Change(after={"style": PromptStyle(True)}),
    "chat style, same system prompt": Change(before={"style": PromptStyle(False, "Be brief.")},
                                             after={"style": PromptStyle(True, "Be brief.")}),
    "few-shot count": Change(before={"num_fewshot": 1}, after=TWO_SHOT),
    "few-shot examples": Change(before=TWO_SHOT, after=TWO_SHOT,
                                edit=_file_edit("data/fp_mc/train.jsonl", "train question", "other question")),
    # 0-shot loglikelihood: nothing asked depends on the seed, only the fingerprint's record of it
    "seed": Change(after={"seed": 99}),
    "seed, few-shot draw": Change(before=TWO_SHOT, after={**TWO_SHOT, "seed": 99}),
    "max_new_tokens": Change("fp_gen", after={"max_new_tokens": 8}),
    "stop sequences": Change("fp_gen", edit=_file_edit("tasks/fp_gen.yaml", 'stop: ["\\n"]', 'stop: ["\\n", "Q:"]')),
    "temperature": Change("fp_gen", after={"temperature": 0.7}),
    "samples per problem": Change("fp_gen", before={"temperature": 0.7},
                                  after={"temperature": 0.7, "samples_per_problem": 3}),
    "formulation": Change(after={"formulation": "generative"}),
    "formulation chosen by capabilities": Change(capabilities=Capabilities(loglikelihood=False, generate=True,
                                                                           chat=True)),
    "scorer hook code": Change("fp_gen", edit=_file_edit("tasks/fp_hooks.py", "responses[0].strip()",
                                                         "responses[0].strip().lower()")),
    "scoring code of the formulation": Change(edit=_source_edit(
        "evalboard.taskdef.shapes.choice", "logprobs / lengths", "logprobs / np.sqrt(lengths)")),
    "prompt assembly code": Change(edit=_source_edit(
        "evalboard.taskdef.prompting", "LETTERS = string.ascii_uppercase", "LETTERS = string.ascii_lowercase")),
    "few-shot selection code": Change(before=TWO_SHOT, after=TWO_SHOT, edit=_source_edit(
        "evalboard.taskdef.fewshot", "random.Random(f\"{seed}:{doc.get('id')}\")",
        "random.Random(f\"{doc.get('id')}:{seed}\")")),
    "what is asked (prompt assembly at run time)": Change(edit=lambda _, patch: _assembled_differently(patch)),
}


# Only visible in the requests themselves; everything else is also hashed by name, so that it
# counts whatever the probe documents show (each part of the fingerprint is held by a case here).
SEEN_IN_REQUESTS_ONLY = {"what is asked (prompt assembly at run time)"}


@pytest.mark.parametrize(("name", "probe"), [(name, True) for name in CHANGES]
                         + [(name, False) for name in CHANGES if name not in SEEN_IN_REQUESTS_ONLY])
def test_the_fingerprint_changes_with(name: str, probe: bool, space: Workspace,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    if not probe:
        monkeypatch.setattr(prepared_module, "PROBE_DOCS", 0)
    change = CHANGES[name]
    before = space.fingerprint(change.task, **change.before)
    assert space.fingerprint(change.task, **change.before) == before  # deterministic
    if change.edit is not None:
        change.edit(space, monkeypatch)
    after = space.fingerprint(change.task, change.capabilities, **change.after)
    assert after != before


def test_runs_of_different_lengths_and_places_share_the_fingerprint(space: Workspace, tmp_path: Path) -> None:
    """--limit picks which items are evaluated (the items hash says which), not what the task is,
    so runs of different lengths stay comparable; the same files elsewhere are the same task."""
    reference = space.fingerprint("fp_gen")
    assert space.fingerprint("fp_gen", limit=2) == reference
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(space.root, elsewhere)
    assert Workspace(elsewhere).fingerprint("fp_gen") == reference


def test_the_fingerprint_is_the_same_in_another_process(space: Workspace) -> None:
    script = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "from test_fingerprints import Workspace; print(Workspace(Path(sys.argv[2])).fingerprint('fp_gen'))"
    )
    done = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent), str(space.root)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == space.fingerprint("fp_gen")


def _gsm8k_cot() -> str:
    prepared = prepare_task(discover_tasks()["gsm8k_cot"], TaskOptions(limit=2, data_source="offline"))
    choose_formulation(prepared, ALL, "a test model")
    return prepared.fingerprint()


def test_a_fix_to_a_built_in_scorer_changes_its_tasks_fingerprint_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """gsm8k_cot is scored by the built-in filters its task file declares: a fix to the regex filter
    changes its fingerprint; an edit to IFEval's scorer or to an adapter does not."""
    reference = _gsm8k_cot()
    for unrelated, old, new in [
        ("evalboard.taskdef.scorers.ifeval", "CHECKER_RANDOM_SEED = 0", "CHECKER_RANDOM_SEED = 1"),
        ("evalboard.models.adapters.hf", "class ", "class  "),
        ("evalboard.engine.nightly", "def ", "def  "),
    ]:
        with monkeypatch.context() as patch:
            _redirect_source(patch, unrelated, old, new)
            assert _gsm8k_cot() == reference, unrelated
    _redirect_source(monkeypatch, "evalboard.taskdef.scorers.filters",
                     'INVALID = "[invalid]"', 'INVALID = "[no answer]"')
    assert _gsm8k_cot() != reference


# --- the nightly planner ---------------------------------------------------------------------


@pytest.fixture
def store(space: Workspace) -> Path:
    """A leaderboard config over fp_mc for the chance baseline, and a store where it has a run."""
    config = space.root / "leaderboard.yaml"
    config.write_text(
        f"results: results\ninclude_paths: [tasks]\ndefaults:\n  data_dir: {space.data}\n"
        "models:\n  - chance:1\ntasks:\n  - fp_mc\n"
    )
    evalboard.evaluate("chance:1", ["fp_mc"], output_dir=space.root / "results", include_paths=[space.tasks],
                       data_dir=space.data)
    return config


def _plan(config: Path) -> tuple[str, str]:
    (cell,) = make_plan(load_config(config)).cells
    return cell.action, cell.reason


NIGHTLY_CHANGES = ["prompt text template", "scoring code of the formulation",
                   "what is asked (prompt assembly at run time)"]


@pytest.mark.parametrize("name", NIGHTLY_CHANGES)
def test_a_changed_task_marks_its_cell_stale(name: str, space: Workspace, store: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner's own decision, not just the fingerprint: up to date before, re-evaluated after
    (this fails if the planner stopped comparing task fingerprints)."""
    assert _plan(store) == ("fresh", "up to date")
    CHANGES[name].edit(space, monkeypatch)
    action, reason = _plan(store)
    assert action == "evaluate" and reason.startswith("stale: task fingerprint changed"), reason
