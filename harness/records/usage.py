"""Run-level cost, latency and throughput from the per-request usage the adapters report."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import mean
from typing import Any

from evalboard.requests import Response


def summarise_usage(responses: Sequence[Response], priced: bool = True) -> dict[str, Any]:
    """Run-level figures of `responses`; `priced=False` (the model has no known price) makes the
    cost unknown (None), not free."""
    generated = [r for r in responses if r.text is not None and not r.failed]
    latencies = [r.usage.latency_s for r in generated if r.usage.latency_s > 0]
    first_tokens = [r.usage.time_to_first_token_s for r in generated if r.usage.time_to_first_token_s]
    output_tokens = sum(r.usage.output_tokens for r in generated)
    generation_time = sum(latencies)
    return {
        "requests": len(responses),
        "failed_requests": sum(1 for r in responses if r.failed),
        "retries": sum(max(r.usage.attempts - 1, 0) for r in responses),
        "input_tokens": sum(r.usage.input_tokens for r in responses),
        "output_tokens": output_tokens,
        "cost_usd": round(sum(r.usage.cost_usd for r in responses), 6) if priced else None,
        "latency_mean_s": round(mean(latencies), 4) if latencies else None,
        "latency_sum_s": round(generation_time, 4) if latencies else None,
        "time_to_first_token_mean_s": round(mean(first_tokens), 4) if first_tokens else None,
        "output_tokens_per_s": round(output_tokens / generation_time, 2) if generation_time else None,
    }
