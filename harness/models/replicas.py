"""One model served at several URLs (`openai-compatible:URL1|URL2#MODEL`): each request goes to the
replica with the fewest requests in flight, so a slower server gets fewer. A replica whose last
attempt raised (a refused connection, a timeout, an HTTP error) is passed over for `cooldown_s`, so the retry of
that request, and the requests after it, go to the others; when every replica has failed recently
the least recently failed one is tried again.

The runner's concurrency, retry and rate rules are those of one server: they count requests to the
model, whichever replica answers. Written here because the OpenAI SDK has no notion of several base
URLs, and a load balancer in front of the servers is one more process to run.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

DEFAULT_COOLDOWN_S = 5.0


@dataclass
class _Replica:
    url: str
    client: Any = None
    in_flight: int = 0
    answered: int = 0  # attempts that returned
    failed: int = 0  # attempts that raised
    failed_at: float = field(default=-float("inf"))


class ReplicaPool:
    """The replicas' counters last as long as the adapter; their clients one `connected()` block
    (an async HTTP client belongs to the event loop it was made in, and each run has its own)."""

    def __init__(self, urls: Sequence[str], cooldown_s: float = DEFAULT_COOLDOWN_S) -> None:
        self._replicas = [_Replica(url) for url in urls]
        self._cooldown_s = cooldown_s
        self._turn = 0  # breaks ties in turn, so an idle pool still alternates

    def _pick(self) -> _Replica:
        now = time.monotonic()
        healthy = [r for r in self._replicas if now - r.failed_at >= self._cooldown_s]
        if not healthy:
            return min(self._replicas, key=lambda r: r.failed_at)
        self._turn += 1
        count = len(self._replicas)
        return min(healthy, key=lambda r: (r.in_flight, (self._replicas.index(r) - self._turn) % count))

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[Any]:
        """The client of the replica this attempt should use."""
        replica = self._pick()
        replica.in_flight += 1
        try:
            yield replica.client
        except BaseException:
            replica.failed += 1
            replica.failed_at = time.monotonic()
            raise
        else:
            replica.answered += 1
        finally:
            replica.in_flight -= 1

    @asynccontextmanager
    async def connected(self, make_client: Callable[[str], Any]) -> AsyncIterator[ReplicaPool]:
        for replica in self._replicas:
            replica.client = make_client(replica.url)
        try:
            yield self
        finally:
            for replica in self._replicas:
                await replica.client.close()
                replica.client = None

    def stats(self) -> list[dict[str, Any]]:
        return [{"url": r.url, "answered": r.answered, "failed": r.failed} for r in self._replicas]
