"""The self-describing record of one run, and its conversion to a pandas DataFrame."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

SCHEMA = "evalboard.run/1"


@dataclass
class RunRecord:
    data: dict[str, Any]
    path: Path | None = None
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)

    @property
    def run_id(self) -> str:
        return self.data["run_id"]

    @property
    def tasks(self) -> dict[str, Any]:
        return self.data["tasks"]

    def metric(self, task: str, metric: str | None = None) -> float:
        entry = self.tasks[task]
        return entry["metrics"][metric or entry["primary_metric"]]["value"]

    def rows(self) -> Iterator[dict[str, Any]]:
        model = self.data["model"]
        for task, entry in self.tasks.items():
            for metric, value in entry["metrics"].items():
                yield {
                    "run_id": self.run_id,
                    "model": model["spec"],
                    "model_fingerprint": model["fingerprint"],
                    "task": task,
                    "formulation": entry["formulation"],
                    "num_fewshot": entry["num_fewshot"],
                    "metric": metric,
                    "value": value["value"],
                    "stderr": value["stderr"],
                    "n": value["n"],
                    "primary": metric == entry["primary_metric"],
                    "task_fingerprint": entry["task_fingerprint"],
                }

    def to_dataframe(self) -> "Any":
        import pandas as pd

        return pd.DataFrame(list(self.rows()))

    def load_samples(self, task: str) -> list[dict[str, Any]]:
        if task not in self.samples:
            if self.path is None:
                raise KeyError(task)
            file = self.path / self.tasks[task]["samples_file"]
            with open(file, encoding="utf-8") as handle:
                self.samples[task] = [json.loads(line) for line in handle]
        return self.samples[task]


def load_run(path: Path) -> RunRecord:
    path = Path(path)
    folder = path.parent if path.is_file() else path
    with open(folder / "run.json", encoding="utf-8") as handle:
        data = json.load(handle)
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{folder} is not an evalboard run (schema {data.get('schema')!r})")
    return RunRecord(data, folder)
