"""The Ray executor: a model's requests answered by replicas of it on a Ray cluster.

Each replica is a Ray actor that loads the model once (the ordinary adapter, on whichever node
Ray places it) and asks the cluster for what it needs: CPUs, GPUs and memory for a local model
(`hf:`, `vllm:`), nothing for a remote API. A remote API's limits are the run's, not each
replica's: its `rpm=` and `tpm=` are token buckets in one actor that every replica takes from (an
idle replica's share is the others'), and its concurrency (`--concurrency`, the spec's
`concurrency=`, `max_concurrency=`) is split between the replicas. A shard's answer also brings the `model_input` text of its
prompts, rendered on the replica, where the tokenizer is. The driver (this process)
cuts each kind's requests into shards, hands a shard to the next idle replica, and passes the
answers of a returned shard to the evaluator's callback, which writes them to the response cache
and the run record: nothing is written on a worker, so a rerun, here or on the cluster, asks
nothing twice.

Faults: a replica whose process or node dies is restarted by Ray (`max_restarts`) wherever there
is room; the shard it held goes back to the front of the queue for whichever replica is idle first,
and the lost replica gets no shard until a ping says it is back. The ping is retried by Ray until
the restarted replica has loaded the model, which can take a while; a replica not back within
`REPLICA_RETURN_S` (on a lost node with no room left elsewhere it may never be) or that Ray gave up
restarting is gone for good, and the others finish the run. Shards already returned are never
asked again. After `MAX_SHARD_ATTEMPTS` losses of one shard, or with every replica gone for good,
the run stops with an error (everything returned so far is already cached).

Why not `ray.util.ActorPool`: it has no notion of a lost actor; resubmitting a shard on failure and
counting it is the whole point here, and it takes a dozen lines of `ray.wait`.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from evalboard.engine.executors import Placement
from evalboard.errors import UserError
from evalboard.models.adapters.base import AdapterSettings, ModelAdapter, ModelSpec, ResultCallback, load_adapter
from evalboard.models.remote import RemotePolicy, TokenBucket, use_shared_rate_limits
from evalboard.requests import Capabilities, Prompt, Request, Response, RollingLoglikelihoodRequest

INSTALL_HINT = "--executor ray needs Ray, which is not installed; install it with: pip install 'evalboard[ray]'"
MAX_SHARD_ATTEMPTS = 6  # losses of one shard before the run gives up
REPLICA_RESTARTS = 4
REPLICA_RETURN_S = 600.0  # how long a lost replica may take to be placed again and load the model
# Schemes whose model runs inside the replica (it needs the node's CPUs/GPUs); others call an API.
LOCAL_MODEL_SCHEMES = frozenset({"hf", "vllm"})

_connect_lock = threading.Lock()


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return ray


def _check_reachable(address: str) -> None:
    """A wrong address is one line at once, not a minute of Ray's connection retries."""
    if address in ("auto", "local"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UserError(f"--ray-address {address!r} is not HOST:PORT (e.g. 127.0.0.1:6379 or ray://HOST:10001)")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise UserError(f"cannot reach a Ray cluster at {address} ({exc.strerror or exc}); start one with "
                        f"`ray start --head --port={port}` or pass the head's address as --ray-address HOST:PORT") from None


def connect(address: str | None) -> None:
    """Join the cluster at `address` (else $RAY_ADDRESS, else start a Ray instance here), once per process."""
    ray = import_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    with _connect_lock:
        if ray.is_initialized():
            return
        if address:
            _check_reachable(address)
        kwargs: dict[str, Any] = {"log_to_driver": False}
        if not address:
            kwargs["include_dashboard"] = False
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise UserError(f"cannot join the Ray cluster at {address or 'a new local instance'}: {first}") from None


class _SharedRateLimits:
    """A remote API's rpm/tpm buckets for all its replicas, in one (async) Ray actor: a `take`
    waiting for its tokens does not hold up the others' calls."""

    def __init__(self, rates: dict[str, float]) -> None:
        self._buckets = {name: TokenBucket(rate) for name, rate in rates.items()}

    async def take(self, name: str, amount: float) -> None:
        await self._buckets[name].take(amount)

    async def adjust(self, name: str, delta: float) -> None:
        self._buckets[name].adjust(delta)


class _SharedBucket:
    """A replica's view of one shared bucket (the `Bucket` its runner takes from)."""

    def __init__(self, actor: Any, name: str) -> None:
        self._actor, self._name = actor, name

    async def take(self, amount: float) -> None:
        await self._actor.take.remote(self._name, amount)

    def adjust(self, delta: float) -> None:
        self._actor.adjust.remote(self._name, delta)  # a correction: nobody waits for it


def shared_rates(spec: ModelSpec) -> dict[str, float]:
    """The rpm/tpm a remote spec names, as the runner reads them (a bad value: the replica says so)."""
    if spec.scheme in LOCAL_MODEL_SCHEMES:
        return {}
    try:
        policy = RemotePolicy.from_options(spec.options)
    except UserError:
        return {}
    rates = {"rpm": policy.requests_per_minute, "tpm": policy.tokens_per_minute}
    return {name: rate for name, rate in rates.items() if rate}


class _Replica:
    """One copy of the model, inside a Ray actor. A failure to load is kept and handed to the
    driver as it is, so `--executor ray` reports the same error as a local run."""

    def __init__(self, spec: str, settings: AdapterSettings, limits: Any = None, shared: Sequence[str] = ()) -> None:
        self.adapter: ModelAdapter | None = None
        self.failure: BaseException | None = None
        if limits is not None:
            use_shared_rate_limits({name: partial(_SharedBucket, limits, name) for name in shared})
        try:
            self.adapter = load_adapter(spec, settings)
        except Exception as exc:  # reported by info(); the actor itself stays up to say so
            self.failure = exc

    def info(self) -> dict[str, Any]:
        import ray

        if self.adapter is None:
            return {"failure": self.failure}
        return {"capabilities": self.adapter.capabilities, "fingerprint": self.adapter.fingerprint(),
                "describe": self.adapter.describe(), "node": ray.get_runtime_context().get_node_id(),
                "pid": os.getpid()}

    def answer(self, kind: str, requests: Sequence[Request]) -> tuple[list[Response | None], dict[Prompt, str | None]]:
        """The shard's answers, and the text the model read for each of its prompts (the record's
        `model_input`), rendered here where the tokenizer is, so the driver need not load one."""
        assert self.adapter is not None
        got: dict[int, Response] = {}
        getattr(self.adapter, kind)(requests, got.__setitem__)
        return [got.get(i) for i in range(len(requests))], self.model_inputs(
            [r.context for r in requests if not isinstance(r, RollingLoglikelihoodRequest)])

    def model_inputs(self, prompts: Sequence[Prompt]) -> dict[Prompt, str | None]:
        assert self.adapter is not None
        return {prompt: self.adapter.model_input(prompt) for prompt in dict.fromkeys(prompts)}

    def usage(self) -> dict[str, Any]:
        return self.adapter.usage_summary() if self.adapter is not None else {}

    def close(self) -> None:
        if self.adapter is not None:
            self.adapter.close()


_actor_class: Any = None


def _replica_actor(ray: Any) -> Any:
    global _actor_class
    if _actor_class is None:
        _actor_class = ray.remote(_Replica)
    return _actor_class


def actor_options(spec: ModelSpec, settings: AdapterSettings, placement: Placement) -> dict[str, Any]:
    """The resources one replica declares (Ray's `.options()`), by default from the model's kind."""
    local = spec.scheme in LOCAL_MODEL_SCHEMES
    gpus = placement.num_gpus
    if gpus is None and spec.scheme == "vllm":  # a server spread over GPUs by vLLM asks for all of them
        from evalboard.models.vllm_parallelism import VLLMParallelism

        size = VLLMParallelism.from_options(spec.options, spec.raw).gpus_per_server()
        gpus = float(size) if size > 1 else None
    if gpus is None:
        gpus = 1.0 if (local and settings.device.startswith("cuda")) else 0.0
    options: dict[str, Any] = {
        "num_cpus": placement.num_cpus if placement.num_cpus is not None else (1.0 if local else 0.0),
        "num_gpus": gpus,
        "max_restarts": REPLICA_RESTARTS,
        "max_task_retries": 0,  # the driver resubmits a lost shard itself (and counts it)
        "scheduling_strategy": "SPREAD",  # replicas on different nodes where there is room
    }
    if placement.memory_gb:
        options["memory"] = int(placement.memory_gb * 2**30)
    return options


def replica_settings(spec: ModelSpec, settings: AdapterSettings, replicas: int) -> AdapterSettings:
    """A remote API is limited for the run as a whole: its replicas share the run's concurrency."""
    if spec.scheme in LOCAL_MODEL_SCHEMES or replicas == 1:
        return settings
    return replace(settings, concurrency=max(1, settings.concurrency // replicas))


def _int_share(value: str, replicas: int) -> str:
    return str(max(1, int(value) // replicas))


def replica_spec(spec: ModelSpec, replicas: int) -> str:
    """The spec each replica loads: a remote API's concurrency options (`concurrency=`,
    `max_concurrency=`) are per runner, so each replica gets its share and the API sees the spec's
    figures in all. The adaptive ceiling is split too when the spec leaves it at its default.
    (`rpm=`/`tpm=` stay whole: the replicas take them from shared buckets.)"""
    if spec.scheme in LOCAL_MODEL_SCHEMES or replicas == 1:
        return spec.raw
    options = {"max_concurrency": str(RemotePolicy.max_concurrency), **spec.options}
    for key, share in (("concurrency", _int_share), ("max_concurrency", _int_share)):
        if key in options:
            try:
                options[key] = share(options[key], replicas)
            except ValueError:
                pass  # not a number: the adapter on the replica says so in one line, as in a local run
    return ",".join([f"{spec.scheme}:{spec.target}", *(f"{key}={value}" for key, value in options.items())])


# Ratios in a replica's usage, as (numerator, denominator, digits) counters of that usage: merged by
# recomputing them over the summed counters (a weighted mean of the rounded ratios is off in the
# last digit). A ratio without its counters (the padding share) is a mean weighted by decode passes.
_RATIOS = {"token_efficiency": ("unique_prefix_tokens", "tokens_forwarded", 4),
           "generation_token_efficiency": ("generation_unique_prompt_tokens", "generation_prompt_tokens_forwarded", 4),
           "generation_mean_rows": ("generation_decode_rows", "generation_decode_passes", 3)}
_WEIGHTED_RATIOS = {"generation_padding_share": "generation_decode_passes"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sum_counters(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The replicas' usage as one: counters summed, ratios recomputed over the summed counters."""
    total: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key not in _RATIOS and key not in _WEIGHTED_RATIOS and _is_number(value) \
                    and _is_number(total.get(key, 0)):
                total[key] = total.get(key, 0) + value
            else:
                total.setdefault(key, value)
    for ratio, (numerator, denominator, digits) in _RATIOS.items():
        if ratio in total and _is_number(total.get(numerator)) and total.get(denominator):
            total[ratio] = round(total[numerator] / total[denominator], digits)
    for ratio, weight in _WEIGHTED_RATIOS.items():
        weighted = [(part[ratio], part.get(weight, 0)) for part in parts if _is_number(part.get(ratio))]
        if weighted and sum(w for _, w in weighted) > 0:
            total[ratio] = round(sum(r * w for r, w in weighted) / sum(w for _, w in weighted), 4)
    return total


class RayShardedModel(ModelAdapter):
    """The `ModelAdapter` interface over replicas of one model on a Ray cluster."""

    def __init__(self, spec: ModelSpec, settings: AdapterSettings, placement: Placement) -> None:
        super().__init__(spec, settings)
        self._ray = import_ray()
        self.placement = placement
        actor = _replica_actor(self._ray).options(**actor_options(spec, settings, placement))
        each = replica_settings(spec, settings, placement.replicas)
        rates = shared_rates(spec) if placement.replicas > 1 else {}  # one replica: its own buckets are the run's
        self._limits = self._ray.remote(_SharedRateLimits).options(num_cpus=0).remote(rates) if rates else None
        self._actors = [actor.remote(replica_spec(spec, placement.replicas), each, self._limits, sorted(rates))
                        for _ in range(placement.replicas)]
        self._model_inputs: dict[Prompt, str | None] = {}  # filled by every shard's answer
        self._down: dict[int, float] = {}  # replicas that lost a shard and have not answered a ping since: when
        self._gone: set[int] = set()  # replicas that did not come back (Ray gave up, or not within REPLICA_RETURN_S)
        self.stats: dict[str, Any] = {"replicas": placement.replicas, "shard_size": placement.shard_size,
                                      "shards": 0, "shards_resubmitted": 0}
        try:
            infos = self._infos()
        except BaseException:
            self.close()
            raise
        first = infos[0]
        self._capabilities: Capabilities = first["capabilities"]
        self._fingerprint: dict[str, Any] = first["fingerprint"]
        self._describe: dict[str, Any] = first["describe"]
        self.stats["nodes"] = len({info["node"] for info in infos})
        if any(info["fingerprint"] != self._fingerprint for info in infos):
            self.close()
            raise UserError(f"the replicas of {spec.raw} do not load the same model (their fingerprints "
                            "differ): give every node the same weights, tokenizer and software")

    def _ping(self, index: int) -> Any:
        """A replica's `info`, retried by Ray while it restarts the replica (lost while loading, or
        its node died): it returns once the replica is up, or fails once Ray has given up on it."""
        return self._actors[index].info.options(max_task_retries=-1).remote()

    def _infos(self) -> list[dict[str, Any]]:
        infos: list[dict[str, Any]] = []
        for index in range(len(self._actors)):
            info = self._ray.get(self._ping(index))
            if info.get("failure") is not None:
                raise info["failure"]
            infos.append(info)
        return infos

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    def fingerprint(self) -> dict[str, Any]:
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        return self._describe

    def model_input(self, prompt: Prompt) -> str | None:
        if prompt not in self._model_inputs:  # answered from the cache: no shard rendered it
            self._model_inputs.update(self._ask_a_replica("model_inputs", [prompt]))
        return self._model_inputs[prompt]

    def _ask_a_replica(self, method: str, *args: Any) -> Any:
        ray = self._ray
        *others, last = [actor for index, actor in enumerate(self._actors) if index not in self._gone] or self._actors
        for actor in others:
            try:
                return ray.get(getattr(actor, method).remote(*args))
            except ray.exceptions.RayActorError:
                continue  # lost: the next one answers
        return ray.get(getattr(last, method).options(max_task_retries=-1).remote(*args))

    def usage_summary(self) -> dict[str, Any]:
        ray = self._ray
        parts = []
        for index, actor in enumerate(self._actors):
            if index in self._down or index in self._gone:
                continue  # lost: its counters went with it (its answers did not), and it may not come back
            try:
                parts.append(ray.get(actor.usage.remote(), timeout=60))
            except (ray.exceptions.RayError, TimeoutError):
                continue  # a replica lost at the very end: its counters are gone, its answers are not
        return {**_sum_counters(parts), "executor": {"kind": "ray", **self.stats}}

    def _answer(self, kind: str, requests: Sequence[Request], on_result: ResultCallback) -> None:
        """Shards to idle replicas until every one has come back. A replica that loses its shard
        (its process or node died, or Ray is restarting it) gets no more until a ping says it is
        back, wherever Ray restarted it; its shard goes to the front of the queue for the others."""
        ray = self._ray
        size = self.placement.shard_size
        todo = deque((start, list(requests[start:start + size])) for start in range(0, len(requests), size))
        lost: dict[int, int] = {}
        idle = set(range(len(self._actors))) - set(self._down) - self._gone
        running: dict[Any, tuple[int, int, list[Request]]] = {}
        pings = {self._ping(index): index for index in self._down}  # each returns once its replica is back
        try:
            while todo or running:
                for index in sorted(idle):
                    if not todo:
                        break
                    idle.discard(index)
                    start, shard = todo.popleft()
                    running[self._actors[index].answer.remote(kind, shard)] = (index, start, shard)
                self._give_up_on_late_replicas(pings)
                if not running and not pings:
                    raise RuntimeError(f"every replica of {self.spec.raw} was lost on the Ray cluster and Ray "
                                       "could not restart one; the answers received so far are cached, a rerun "
                                       "asks only for the rest")
                ready, _ = ray.wait([*running, *pings], num_returns=1, timeout=1.0)
                if not ready:
                    continue
                if ready[0] in pings:
                    self._ping_returned(ready[0], pings.pop(ready[0]), idle)
                    continue
                index, start, shard = running.pop(ready[0])
                try:
                    answers, inputs = ray.get(ready[0])
                except ray.exceptions.RayTaskError as exc:  # the adapter itself raised: as in a local run
                    raise exc.cause if isinstance(exc.cause, BaseException) else exc from None
                except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError) as exc:
                    # ActorUnavailableError (restarting) is not a loss of the shard; the others are
                    if not isinstance(exc, ray.exceptions.ActorUnavailableError):
                        lost[start] = lost.get(start, 0) + 1
                    if lost.get(start, 0) >= MAX_SHARD_ATTEMPTS:
                        first = (str(exc).splitlines() or [type(exc).__name__])[0]
                        raise RuntimeError(f"a shard of {len(shard)} {kind} requests of {self.spec.raw} was lost "
                                           f"{lost[start]} times on the Ray cluster ({first}); the answers "
                                           "received so far are cached, a rerun asks only for the rest") from None
                    self.stats["shards_resubmitted"] += 1
                    todo.appendleft((start, shard))
                    self._down[index] = time.monotonic()
                    pings[self._ping(index)] = index
                    continue
                idle.add(index)
                self.stats["shards"] += 1
                self._model_inputs.update(inputs)
                for offset, response in enumerate(answers):
                    if response is not None:
                        on_result(start + offset, response)
        finally:
            for ref in [*running, *pings]:
                ray.cancel(ref, force=False)

    def _ping_returned(self, ping: Any, index: int, idle: set[int]) -> None:
        """Back: idle again. A ping that failed even with Ray's retries found the replica gone for
        good (Ray gave up restarting it), as does one that says the restarted replica could not load
        the model: the others carry on."""
        try:
            back = self._ray.get(ping).get("failure") is None  # restarted where it could not load: gone too
        except self._ray.exceptions.RayError:
            back = False
        if back:
            self._down.pop(index, None)
            idle.add(index)
        else:
            self._write_off(index)

    def _give_up_on_late_replicas(self, pings: dict[Any, int]) -> None:
        """A replica not back within REPLICA_RETURN_S of its loss (no room to place it again) is gone."""
        now = time.monotonic()
        for ping, index in list(pings.items()):
            if now - self._down[index] > REPLICA_RETURN_S:
                self._ray.cancel(ping, force=False)
                del pings[ping]
                self._write_off(index)

    def _write_off(self, index: int) -> None:
        """Gone for good: no more shards or pings, and nothing asked of it at the end."""
        self._down.pop(index, None)
        self._gone.add(index)

    def loglikelihood(self, requests: Sequence[Any], on_result: ResultCallback) -> None:
        self._answer("loglikelihood", requests, on_result)

    def loglikelihood_rolling(self, requests: Sequence[Any], on_result: ResultCallback) -> None:
        self._answer("loglikelihood_rolling", requests, on_result)

    def generate(self, requests: Sequence[Any], on_result: ResultCallback) -> None:
        self._answer("generate", requests, on_result)

    def close(self) -> None:
        ray = self._ray
        actors, self._actors = getattr(self, "_actors", []), []
        lost = {*getattr(self, "_down", {}), *getattr(self, "_gone", set())}
        for index, actor in enumerate(actors):  # a vLLM replica stops its server; then the actor goes
            try:
                if index not in lost:  # a lost one may never be placed again: nothing to wait for
                    ray.get(actor.close.remote(), timeout=60)
            except (ray.exceptions.RayError, TimeoutError):
                pass
            ray.kill(actor, no_restart=True)
        if getattr(self, "_limits", None) is not None:
            ray.kill(self._limits, no_restart=True)
            self._limits = None
