"""The results store: one folder per run (run.json + samples/<task>.jsonl), written atomically.

Everything is written into a hidden staging folder and renamed into place at the end, so a run
folder either exists complete or not at all; a full disk or a crash leaves nothing half-written.
Runs hold every model answer: the folders the store creates are 0700 and its files 0600 whatever
the umask, as the response cache's are.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

from evalboard.atomic import make_private_dirs, open_private
from evalboard.errors import UserError
from evalboard.records.run_record import RunRecord, SampleLine, load_run


def check_writable(directory: Path) -> None:
    """Fail before any work if results could not be saved there."""
    try:
        make_private_dirs(directory)
        probe = tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise UserError(f"output directory {directory} is not writable ({exc.strerror}); "
                        f"choose another with --output") from exc


# A value JSON has no type for (a numpy scalar in free-form scores, say) is written as its str().
_UNKNOWN = str


def _write_json_lines(path: Path, lines: list[SampleLine]) -> None:
    """One compact JSON object per line (pydantic's serialiser: a large log is written fast)."""
    with open_private(path) as handle:
        for line in lines:
            handle.write(line.model_dump_json(fallback=_UNKNOWN))
            handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())


def save_run(directory: Path, record: RunRecord) -> RunRecord:
    """The one place a record becomes files: run.json and each task's sample lines, serialised
    from the models (so what is on disk is exactly what the models allow)."""
    directory = Path(directory)
    staging = directory / f".{record.run_id}.partial"
    final = directory / record.run_id
    files = {task: record.tasks[task].samples_file for task in record.samples}
    if None in files.values():
        raise ValueError(f"{record.run_id}: a task with sample lines has no samples_file to write them to")
    try:
        make_private_dirs(staging / "samples")
        for task, lines in record.samples.items():
            _write_json_lines(staging / str(files[task]), lines)
        with open_private(staging / "run.json") as handle:
            json.dump(record.model_dump(mode="json", fallback=_UNKNOWN), handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, final)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
        raise UserError(
            f"could not write results to {directory}: {reason}; nothing was saved there, but every "
            f"model answer is in the response cache, so rerunning the same command repeats no requests"
        ) from exc
    return record.stored_at(final)


def list_runs(directory: Path) -> list[RunRecord]:
    """Every complete run under a results folder, oldest first (by creation time, then id)."""
    return scan_runs(directory)[0]


def scan_runs(directory: Path) -> tuple[list[RunRecord], list[tuple[Path, str]]]:
    """The runs under a results folder (as list_runs gives them), and each run folder that could
    not be read with the reason: a damaged run is skipped, not allowed to break the leaderboard,
    but the caller can say so."""
    runs, skipped = [], []
    for run_file in sorted(Path(directory).glob("*/run.json")):
        try:
            runs.append(load_run(run_file.parent))
        except UnicodeDecodeError:
            skipped.append((run_file.parent, "run.json is not UTF-8 text"))
        except json.JSONDecodeError as exc:
            skipped.append((run_file.parent, f"run.json is not valid JSON ({exc.msg} at line {exc.lineno})"))
        except (ValueError, KeyError, OSError) as exc:
            skipped.append((run_file.parent, str(exc) or type(exc).__name__))
    return sorted(runs, key=lambda r: (r.created_at, r.run_id)), skipped


def _same_measurement(a: RunRecord, b: RunRecord) -> bool:
    """Two runs that measured the same thing and got the same numbers: same model (spec, label,
    fingerprint), same run settings, and task by task the same questions and results."""
    if (a.model.spec, a.model.label, a.model.fingerprint) != (b.model.spec, b.model.label, b.model.fingerprint):
        return False
    if a.settings != b.settings or a.tasks.keys() != b.tasks.keys():
        return False
    return all(a.tasks[name].model_dump(exclude={"samples_file"}) == b.tasks[name].model_dump(exclude={"samples_file"})
               for name in a.tasks)


def find_identical_run(directory: Path, record: RunRecord) -> RunRecord | None:
    """The newest run under `directory` that is the same measurement as `record` (see
    `_same_measurement`), or None. A rerun whose every answer came from the cache and that matches
    one needs no folder of its own: it would only be a copy."""
    if not Path(directory).is_dir():
        return None
    matches = [run for run in list_runs(directory) if run.run_id != record.run_id and _same_measurement(run, record)]
    return matches[-1] if matches else None
