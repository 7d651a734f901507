"""evalboard: benchmark language models on real items and publish a leaderboard."""

import os
from typing import Any

__version__ = "0.1.0"

# OpenMP threads that spin while waiting make torch on a few CPU cores 10-30x slower as soon as
# anything else runs (a vLLM server, sandbox workers, another job): measured 141 s vs 5 s for the
# same greedy generation on 2 cores. Passive waiting costs nothing measurable on an idle machine.
# It only takes effect if set before torch starts its thread pool, hence here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def __getattr__(name: str) -> Any:
    # `evalboard.evaluate` without importing the engine (and torch) at package import time.
    if name == "evaluate":
        from evalboard.engine.api import evaluate

        return evaluate
    raise AttributeError(name)
