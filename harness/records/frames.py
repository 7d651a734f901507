"""pandas views of stored results: a task's samples as one row per item (`samples_frame`), and
what the model picked on a multiple-choice item (`choice_pick`), shared with the comparison's
lists of changed items."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from evalboard.records.run_record import RunRecord, SampleLine


def choice_pick(sample: SampleLine, metric: str = "acc") -> int | None:
    """For a loglikelihood multiple-choice item: the index of the choice `metric` (acc or acc_norm)
    picked, as recorded when it was scored (`taskdef.shapes.choice.choice_picks`). None for any
    other item, and for records written before picks were recorded (imports too)."""
    return (sample.picks or {}).get(metric)


def _response_text(sample: SampleLine) -> str | None:
    texts = [r.text for r in sample.responses if r.text is not None]
    if not texts:
        return None
    return texts[0] if len(texts) == 1 else " | ".join(texts)


def _first_answer(sample: SampleLine) -> Any:
    """The first filter's extracted answer (GSM8K's number, say), for generative items."""
    if not sample.filtered:
        return None
    answers = next(iter(sample.filtered.values()))
    return answers[0] if isinstance(answers, list) and len(answers) == 1 else answers


def sample_row(sample: SampleLine) -> dict[str, Any]:
    """One item as a flat row: what was asked, the target, what the model answered, each score."""
    row: dict[str, Any] = {
        "index": sample.index,
        "doc_id": sample.doc_id,
        "prompt": sample.prompt,
        "target": sample.target,
        "pick": choice_pick(sample),
        "pick_norm": choice_pick(sample, "acc_norm"),
        "response": _response_text(sample),
        "answer": _first_answer(sample),
        "error": sample.error,
    }
    row.update(sample.scores)
    return row


def samples_frame(record: RunRecord, task: str) -> pd.DataFrame:
    """One row per item of `task` in `record` (see `RunRecord.samples_df`)."""
    import pandas as pd

    if task not in record.tasks:
        raise KeyError(f"{task!r} is not a task of run {record.run_id} (its tasks: {', '.join(record.tasks)})")
    frame = pd.DataFrame([sample_row(sample) for sample in record.iter_samples(task)])
    # columns no item has (pick on a generative task, answer without filters) are left out
    keep = [c for c in frame.columns if c in ("index", "doc_id", "prompt", "target") or frame[c].notna().any()]
    return frame[keep]
