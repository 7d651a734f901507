"""Rolling loglikelihood (log P(text) over a text longer than the model's window), shared by the
adapters that score tokens themselves (hf:, openai-compatible:).

The windows are lm-eval's: `get_rolling_token_windows(context_len=1)` followed by
`make_disjoint_window` (lm_eval/utils.py), so a text's total is the sum lm-eval's
`loglikelihood_rolling` reports. Every token is predicted exactly once; each window's
context + continuation is max_length + 1 tokens (the model input is max_length), except a text
shorter than one window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from evalboard.models.adapters.base import ResultCallback
from evalboard.requests import Response, Usage

TokenPair = tuple[list[int], list[int]]


def rolling_windows(tokens: Sequence[int], prefix: int, max_length: int) -> list[TokenPair]:
    """(context, continuation) pairs covering `tokens`. The first window predicts the first
    max_length tokens after the prefix token (BOS, else EOS); each later one predicts the next
    max_length tokens (fewer at the end) conditioned on as many preceding tokens as fit: one for a
    full window, more for the shorter last window."""
    if max_length < 1:
        raise ValueError(f"max_length must be at least 1, not {max_length}")
    tokens = list(tokens)
    windows: list[TokenPair] = []
    for start in range(0, len(tokens), max_length):
        end = min(start + max_length, len(tokens))
        context = [prefix] if start == 0 else tokens[end - max_length - 1 : start]
        windows.append((context, tokens[start:end]))
    return windows


@dataclass
class WindowSums:
    """Collects window answers into one answer per text: the sum of its windows' logprobs (and
    of their usage); a text with a failed window fails, and a text with no tokens scores 0."""

    owners: list[int]  # text index of each window
    texts: int
    on_result: ResultCallback
    _totals: list[Response] = field(init=False)
    _remaining: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self._totals = [Response(logprob=0.0) for _ in range(self.texts)]
        self._remaining = [0] * self.texts
        for owner in self.owners:
            self._remaining[owner] += 1

    def deliver_empty(self) -> None:
        """Answer the texts that have no windows (nothing to predict)."""
        for text, count in enumerate(self._remaining):
            if count == 0:
                self.on_result(text, self._totals[text])

    def __call__(self, window: int, response: Response) -> None:
        text = self.owners[window]
        total = self._totals[text]
        if response.failed:
            total.error = total.error or response.error
        else:
            total.logprob = (total.logprob or 0.0) + float(response.logprob or 0.0)
        usage, part = total.usage, response.usage
        total.usage = Usage(input_tokens=usage.input_tokens + part.input_tokens,
                            latency_s=usage.latency_s + part.latency_s,
                            attempts=max(usage.attempts, part.attempts))
        self._remaining[text] -= 1
        if self._remaining[text] == 0:
            if total.error is not None:
                total.logprob = None
            self.on_result(text, total)
