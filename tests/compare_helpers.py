"""Hand-built run records for the compare tests, and the `evalboard compare` command in-process."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from evalboard.records.run_record import (
    HarnessInfo,
    ModelIdentity,
    RunRecord,
    RunSettings,
    RunUsage,
    SampleLine,
    TaskResult,
)

Scores = Sequence[tuple[str, Any]]  # (doc_id, score) in the run's item order


def make_record(run_id: str, tasks: dict[str, Scores], *, model_fp: str | None = None,
                fingerprints: dict[str, str] | None = None, metric: str = "acc",
                higher_is_better: bool = True, entry_overrides: dict[str, dict[str, Any]] | None = None,
                settings: dict[str, Any] | None = None, errors: Sequence[str] = ()) -> RunRecord:
    """A run record with per-sample scores, shaped as the evaluator writes them. `errors` are
    doc_ids whose requests failed (no scores)."""
    entries, samples = {}, {}
    for task, rows in tasks.items():
        lines = []
        for index, (doc_id, value) in enumerate(rows):
            failed = doc_id in errors
            lines.append(SampleLine(
                index=index, doc_id=doc_id, prompt=f"Question {doc_id}?\nAnswer:", target=0,
                requests=[{"kind": "loglikelihood", "continuation": " yes"},
                          {"kind": "loglikelihood", "continuation": " no"}],
                responses=[{"logprob": -1.0 if value == 1 else -2.0}, {"logprob": -1.5}],
                picks={"acc": 0 if value == 1 else 1, "acc_norm": 0 if value == 1 else 1},
                scores={} if failed else {metric: value},
                error="HTTP 500" if failed else None,
            ))
        samples[task] = lines
        entries[task] = TaskResult(**{
            "task_fingerprint": (fingerprints or {}).get(task, f"fp-{task}"),
            "items_hash": "h", "mirrors": "", "formulation": "loglikelihood", "num_fewshot": 0,
            "primary_metric": metric, "higher_is_better": higher_is_better,
            "metrics": {metric: {"value": 0.0, "stderr": None, "n": len(rows)}},
            "n_items": len(rows), "failed_items": len(errors), "data_origin": "local:x",
            "generation": None, "samples_per_item": 1, "samples_file": f"samples/{task}.jsonl",
            **((entry_overrides or {}).get(task, {})),
        })
    return RunRecord(
        run_id=run_id, created_at="2025-01-01T00:00:00+00:00",
        harness=HarnessInfo(name="evalboard", version="0.1.0", git_commit=None),
        model=ModelIdentity(spec=f"hf:{run_id}", label=f"hf:{run_id}", fingerprint=model_fp or f"model-{run_id}"),
        settings=RunSettings(**{"seed": 1234, **(settings or {})}),
        tasks=entries, usage=RunUsage(unique_requests=0, cache_hits=0), wall_time_s=0.0,
    ).with_samples(samples)


def binary(prefix: str, pattern: str) -> list[tuple[str, float]]:
    """'1100' -> [(prefix-0, 1.0), (prefix-1, 1.0), (prefix-2, 0.0), (prefix-3, 0.0)]."""
    return [(f"{prefix}-{i}", float(ch)) for i, ch in enumerate(pattern)]


def compare_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                *args: str | Path) -> tuple[int, str, str]:
    """`evalboard compare ARGS` through the real CLI entry point, in-process (fast), with the
    command registered even before cli.py lists it (test_compare_is_registered checks that)."""
    from evalboard import cli

    if "compare" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "compare"))
    try:
        code = cli.main(["compare", *map(str, args)])
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
