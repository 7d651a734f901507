"""evalboard: benchmark language models on real items and publish a leaderboard.

The public Python surface is what `__all__` names; every other module is internal and may move
(docs/architecture.md). The names are loaded on first use, so `import evalboard` stays cheap
(no torch, no pandas) for the CLI and for tools that only read results.
"""

import importlib
import os
from typing import Any

__version__ = "0.1.0"

# OpenMP threads that spin while waiting make torch on a few CPU cores 10-30x slower as soon as
# anything else runs (a vLLM server, sandbox workers, another job): measured 141 s vs 5 s for the
# same greedy generation on 2 cores. Passive waiting costs nothing measurable on an idle machine.
# It only takes effect if set before torch starts its thread pool, hence here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# MKL's matrix products otherwise pick their kernel and thread split by the matrix's shape, so a
# row's result depends on how many rows share the product: a request's loglikelihood would move
# with the batch size (docs/prefix-sharing.md). Strict conditional numerical reproducibility
# makes each row's result independent of the others, at no measurable cost. MKL reads it at its
# first call, hence here too.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

# public name -> the module that defines it
_PUBLIC = {
    "evaluate": "evalboard.engine.api",
    "RunRecord": "evalboard.records.run_record",
    "load_run": "evalboard.records.run_record",
    "list_runs": "evalboard.records.store",
    "results_df": "evalboard.leaderboard.results_frame",
    "compare_runs": "evalboard.comparison.compare",
    "build_leaderboard": "evalboard.leaderboard.build",
    "discover_tasks": "evalboard.taskdef.registry",
    "UserError": "evalboard.errors",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'evalboard' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
