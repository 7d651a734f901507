"""What a Ray replica asks the cluster for and how it is configured, without a cluster: the
resources one replica declares, a remote API's concurrency split between replicas and its rates
kept whole for the buckets they share, so the API sees the spec's figures in all, and the replicas' usage merged with its ratios recomputed."""

from __future__ import annotations

import pytest
from evalboard.engine.executors import Placement
from evalboard.engine.executors.ray_cluster import (
    _sum_counters,
    actor_options,
    replica_settings,
    replica_spec,
    shared_rates,
)
from evalboard.models.adapters.base import AdapterSettings, ModelSpec
from evalboard.models.remote import RemotePolicy
from evalboard.requests import Response

API = "openai-compatible:http://127.0.0.1:8000/v1,model=m,concurrency=8,rpm=600,tpm=90000"


@pytest.mark.parametrize("spec,device,placement,cpus,gpus", [
    ("vllm:/models/m,tensor_parallel_size=4", "auto", Placement(), 1.0, 4.0),  # TP over 4 GPUs asks for 4
    ("vllm:/models/m,tensor_parallel_size=2,pipeline_parallel_size=2,data_parallel_size=2", "auto", Placement(),
     1.0, 8.0),
    ("vllm:/models/m,tensor_parallel_size=4", "auto", Placement(num_gpus=2, num_cpus=4), 4.0, 2.0),  # flags win
    ("vllm:/models/m", "auto", Placement(), 1.0, 0.0),
    ("hf:/models/m", "cuda:0", Placement(), 1.0, 1.0),
    ("hf:/models/m", "auto", Placement(), 1.0, 0.0),
    (API, "cuda", Placement(), 0.0, 0.0),  # a remote API needs nothing on the node
])
def test_a_replica_declares_its_resources(spec: str, device: str, placement: Placement, cpus: float,
                                          gpus: float) -> None:
    options = actor_options(ModelSpec.parse(spec), AdapterSettings(device=device), placement)
    assert (options["num_cpus"], options["num_gpus"]) == (cpus, gpus)
    assert options["max_task_retries"] == 0 and options["scheduling_strategy"] == "SPREAD"
    assert "memory" not in options


def test_a_replica_declares_the_memory_asked_for() -> None:
    options = actor_options(ModelSpec.parse("hf:/models/m"), AdapterSettings(), Placement(memory_gb=1.5))
    assert options["memory"] == 3 * 2**29


def test_the_run_concurrency_is_shared_by_a_remote_apis_replicas_only() -> None:
    settings = AdapterSettings(concurrency=8)
    assert replica_settings(ModelSpec.parse(API), settings, 3).concurrency == 2
    assert replica_settings(ModelSpec.parse(API), settings, 1) is settings
    assert replica_settings(ModelSpec.parse("hf:/models/m"), settings, 4) is settings
    assert replica_settings(ModelSpec.parse("vllm:/models/m"), settings, 4) is settings


def _policy(spec: str, replicas: int) -> RemotePolicy:
    parsed = ModelSpec.parse(spec)
    each = ModelSpec.parse(replica_spec(parsed, replicas))
    return RemotePolicy.from_options(each.options, replica_settings(parsed, AdapterSettings(), replicas))


@pytest.mark.parametrize("replicas", [1, 2, 4])
def test_a_remote_apis_concurrency_is_split_and_its_rates_stay_whole_for_the_shared_buckets(replicas: int) -> None:
    policy = _policy(API, replicas)
    # rpm/tpm are the run's: every replica names them whole and takes from the buckets they share
    assert (policy.requests_per_minute, policy.tokens_per_minute) == (600, 90000)
    assert shared_rates(ModelSpec.parse(API)) == {"rpm": 600, "tpm": 90000}
    assert policy.concurrency * replicas == 8
    assert policy.max_concurrency * replicas == RemotePolicy.max_concurrency  # the AIMD ceiling too
    spec = ModelSpec.parse(replica_spec(ModelSpec.parse(API), replicas))
    assert (spec.scheme, spec.target, spec.options["model"]) == ("openai-compatible", "http://127.0.0.1:8000/v1", "m")


def test_a_local_model_or_an_unlimited_api_shares_no_rates() -> None:
    assert shared_rates(ModelSpec.parse("vllm:/models/m,rpm=60")) == {}
    assert shared_rates(ModelSpec.parse("openai:gpt-4o-mini,concurrency=4")) == {}
    assert shared_rates(ModelSpec.parse("openai:gpt-4o-mini,rpm=fast")) == {}  # the replica says what is wrong


def test_runners_in_a_replica_process_take_from_the_shared_buckets() -> None:
    """use_shared_rate_limits: every runner made after it takes its rpm from the shared bucket (the
    one the driver's actor holds), whatever rate its own policy names."""
    from evalboard.models import remote

    taken: list[float] = []

    class Recording:
        async def take(self, amount: float) -> None:
            taken.append(amount)

        def adjust(self, delta: float) -> None:
            taken.append(delta)

    async def call(item: int) -> Response:
        return Response(text=str(item))

    try:
        remote.use_shared_rate_limits({"rpm": Recording})
        runner = remote.RemoteRunner(RemotePolicy(requests_per_minute=1e-6))  # alone, minutes per request
        got: dict[int, Response] = {}
        runner.run(list(range(5)), call, got.__setitem__)
        assert sorted(got) == list(range(5)) and taken == [1, 1, 1, 1, 1]
    finally:
        remote.use_shared_rate_limits({})
    assert isinstance(remote.RemoteRunner(RemotePolicy(requests_per_minute=60))._rpm, remote.TokenBucket)


def test_a_given_ceiling_is_split_and_a_share_never_falls_below_one() -> None:
    policy = _policy("openai-compatible:http://h:1/v1,concurrency=3,max_concurrency=6", 4)
    assert (policy.concurrency, policy.max_concurrency) == (1, 1)
    assert _policy("openai-compatible:http://h:1/v1,max_concurrency=100", 2).max_concurrency == 50


def test_a_local_models_spec_goes_to_each_replica_unchanged() -> None:
    for spec in ("hf:/models/m,concurrency=8", "vllm:/models/m,max_num_seqs=4,rpm=60"):
        assert replica_spec(ModelSpec.parse(spec), 4) == spec
    assert replica_spec(ModelSpec.parse(API), 1) == API


def test_merged_usage_sums_counters_and_recomputes_ratios() -> None:
    parts = [{"forward_passes": 3, "tokens_forwarded": 60, "unique_prefix_tokens": 30, "token_efficiency": 0.5,
              "generation_decode_passes": 10, "generation_decode_rows": 20, "generation_mean_rows": 2.0,
              "auto_batch_sizes": [8]},
             {"forward_passes": 5, "tokens_forwarded": 100, "unique_prefix_tokens": 90, "token_efficiency": 0.9,
              "generation_decode_passes": 30, "generation_decode_rows": 120, "generation_mean_rows": 4.0,
              "auto_batch_sizes": [4]}]
    merged = _sum_counters(parts)
    assert (merged["forward_passes"], merged["tokens_forwarded"], merged["unique_prefix_tokens"]) == (8, 160, 120)
    assert merged["token_efficiency"] == 0.75  # 120 / 160, not 0.5 + 0.9
    assert merged["generation_mean_rows"] == 3.5  # 140 rows over 40 passes
    assert merged["auto_batch_sizes"] == [8]
    # from the counters, not from the replicas' rounded ratios (whose weighted mean here is 0.6666)
    rounded = _sum_counters([{"tokens_forwarded": 3, "unique_prefix_tokens": 1, "token_efficiency": 0.3333},
                             {"tokens_forwarded": 6, "unique_prefix_tokens": 5, "token_efficiency": 0.8333}])
    assert rounded["token_efficiency"] == round(6 / 9, 4) == 0.6667
    idle = _sum_counters([{"tokens_forwarded": 0, "token_efficiency": 1.0}] * 2)
    assert idle["token_efficiency"] == 1.0


def test_a_bad_rate_value_is_left_for_the_adapter_to_report() -> None:
    spec = ModelSpec.parse("openai-compatible:http://h:1/v1,rpm=fast,concurrency=4")
    assert ModelSpec.parse(replica_spec(spec, 2)).options == {"max_concurrency": "32", "rpm": "fast", "concurrency": "2"}
