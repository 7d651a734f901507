"""Greedy generation for local models: the shared prompt prefix computed once, continuous
batching, and each row stopped at its own stop sequence or end token. See docs/generation.md.

Requests are grouped into families of prompts that begin alike (a task's few-shot block); each
family's common prefix is forwarded once and its keys/values kept once. Up to `rows` prompts of a
family decode together, one token each per forward pass; a row that finishes (end token, stop
sequence, token limit) is replaced by the next prompt at once, so no pass waits on the longest
answer of a batch. Each row keeps only its own keys/values (its prompt's tail and its tokens), in
its own tensors: rows of different lengths need no padding, and the memory held is the sum of the
rows' lengths, which `budget_tokens` bounds (a row is set aside, and recomputed later, when the
others would not fit).

The attention is this module's own function, registered with transformers' attention interface
and selected only for these passes: the model's projections, rotary embeddings, norms and output
layer run as they are; per layer, a query attends to the shared prefix (one matrix product for all
rows, so the prefix is read once per pass, never copied per row) and to its row's own keys, both
in one softmax. transformers has no cache layout for "one shared prefix + ragged rows" (its
continuous-batching manager pages a per-request copy of every prompt), hence this module.

Greedy tokens equal those of `model.generate` on each prompt alone (the same products and one
softmax in float32; only summation order differs); tests/test_generation.py checks it token for
token on Llama, Mistral (sliding window) and Gemma 2 (soft-capping) models.
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from evalboard.models.prefix_scoring import FAMILY_MIN_SHARED, _common_prefix, _common_prefix_all, _unique_tokens

ATTENTION_NAME = "evalboard_shared_prefix"
GROWTH = 256  # tokens added to a row's key/value tensors when they fill up
# Stop checks decode only a row's last (longest stop's UTF-8 bytes + STOP_MARGIN) tokens: every
# token adds at least a byte, so a stop that has just appeared lies within them; the margin keeps
# the character before it (a tail's first token can lose its leading space, or split a character).
STOP_MARGIN = 2


@dataclass(frozen=True)
class GenerationJob:
    """One prompt to continue greedily (token ids), with its own limits."""

    index: int
    tokens: tuple[int, ...]
    max_new_tokens: int
    stop: tuple[str, ...] = ()


@dataclass
class GenerationResult:
    index: int
    tokens: list[int]  # new tokens, the end token (if any) included
    prompt_tokens: int
    seconds: float


@dataclass
class GenerationStats:
    prompt_tokens_forwarded: int = 0  # prompt tokens pushed through the model (recomputations included)
    unique_prompt_tokens: int = 0  # distinct positions of the prefix tree of all prompts
    recomputed_tokens: int = 0  # prompt and answer tokens forwarded again after a row was set aside
    decode_passes: int = 0
    decode_rows: int = 0  # rows summed over decode passes
    max_rows: int = 0
    max_shared_held: int = 0  # most keys/values rows held at once (own tokens) while more than one row ran

    def summary(self) -> dict[str, Any]:
        forwarded = self.prompt_tokens_forwarded
        return {
            "generation_prompt_tokens_forwarded": forwarded,
            "generation_unique_prompt_tokens": self.unique_prompt_tokens,
            "generation_token_efficiency": round(self.unique_prompt_tokens / forwarded, 4) if forwarded else 1.0,
            "generation_recomputed_tokens": self.recomputed_tokens,
            "generation_decode_passes": self.decode_passes,
            "generation_decode_rows": self.decode_rows,
            "generation_mean_rows": round(self.decode_rows / self.decode_passes, 3) if self.decode_passes else 0.0,
            # rows keep their own keys/values unpadded: no pass attends to, or computes, padding
            "generation_padding_share": 0.0,
        }


class _KeysValues:
    """One sequence's keys and values in every layer: (kv heads, capacity, head dim) tensors,
    grown GROWTH tokens at a time; `length` tokens are valid."""

    def __init__(self, layers: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * layers
        self.values: list[torch.Tensor | None] = [None] * layers
        self.length = 0

    def write(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store (kv heads, n, head dim) new keys/values after the valid ones; return all valid ones."""
        end = self.length + keys.shape[1]
        held_k, held_v = self.keys[layer], self.values[layer]
        if held_k is None or held_v is None or held_k.shape[1] < end:
            capacity = end + GROWTH
            grown_k = keys.new_empty((keys.shape[0], capacity, keys.shape[2]))
            grown_v = values.new_empty((values.shape[0], capacity, values.shape[2]))
            if held_k is not None and held_v is not None and self.length:
                grown_k[:, : self.length] = held_k[:, : self.length]
                grown_v[:, : self.length] = held_v[:, : self.length]
            self.keys[layer], self.values[layer] = held_k, held_v = grown_k, grown_v
        held_k[:, self.length : end] = keys
        held_v[:, self.length : end] = values
        return held_k[:, :end], held_v[:, :end]


@dataclass
class _Pass:
    """What the attention function needs to know about one forward pass: the shared prefix (or
    None) and, per row of the input, the sequence its keys/values go to."""

    prefix: _KeysValues | None
    rows: list[_KeysValues]


def _shared_prefix_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                             attention_mask: Any, scaling: float | None = None, dropout: float = 0.0,
                             sliding_window: int | None = None, softcap: float | None = None,
                             evalboard_pass: _Pass | None = None, **_: Any) -> tuple[torch.Tensor, None]:
    """Attention of `query` (rows x heads x q x head dim) over the shared prefix and each row's
    own keys (the new ones stored first), causal, within `sliding_window` where the layer slides,
    with the layer's logit soft-capping. Returns (rows x q x heads x head dim, None)."""
    assert evalboard_pass is not None, "selected only for passes that describe their rows"
    rows, heads, q, dim = query.shape
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    scale = scaling if scaling is not None else dim ** -0.5
    layer = module.layer_idx
    prefix = evalboard_pass.prefix
    shared = prefix.length if prefix is not None else 0
    if q > 1 and softcap is None:
        return _prompt_attention(query, key, value, layer, scale, sliding_window, evalboard_pass), None
    by_kv = (query * scale).view(rows, kv_heads, groups, q, dim)
    if prefix is not None and shared:
        prefix_k, prefix_v = prefix.keys[layer], prefix.values[layer]
        assert prefix_k is not None and prefix_v is not None
        prefix_k, prefix_v = prefix_k[:, :shared], prefix_v[:, :shared]
        flat = by_kv.permute(1, 0, 2, 3, 4).reshape(kv_heads, rows * groups * q, dim)
        prefix_scores = (flat @ prefix_k.transpose(1, 2)).view(kv_heads, rows, groups, q, shared).transpose(0, 1)
    probabilities_on_prefix, outputs = [], []
    for r, sequence in enumerate(evalboard_pass.rows):
        start = sequence.length
        own_k, own_v = sequence.write(layer, key[r], value[r])
        scores = (by_kv[r].reshape(kv_heads, groups * q, dim) @ own_k.transpose(1, 2)).view(kv_heads, groups, q, -1)
        if shared:
            scores = torch.cat([prefix_scores[r], scores], dim=-1)
        if softcap is not None:
            scores = torch.tanh(scores / softcap) * softcap
        if q > 1 or (sliding_window is not None and shared + start >= sliding_window):  # else every key is seen
            visible = _visible(shared, start, q, scores.shape[-1], sliding_window, query.device)
            scores = scores.masked_fill(~visible, float("-inf"))
        probabilities = _softmax(scores).to(query.dtype)
        out = probabilities[..., shared:].reshape(kv_heads, groups * q, -1) @ own_v
        outputs.append(out.view(kv_heads, groups, q, dim))
        if shared:
            probabilities_on_prefix.append(probabilities[..., :shared])
    out = torch.stack(outputs)  # rows x kv heads x groups x q x dim
    if shared:
        weights = torch.stack(probabilities_on_prefix).transpose(0, 1).reshape(kv_heads, rows * groups * q, shared)
        out = out + (weights @ prefix_v).view(kv_heads, rows, groups, q, dim).transpose(0, 1)
    return out.reshape(rows, heads, q, dim).transpose(1, 2).contiguous(), None


def _visible(shared: int, start: int, q: int, keys: int, window: int | None, device: torch.device) -> torch.Tensor:
    """(q x keys) booleans: the query at position shared + start + i may attend to key position k
    (prefix positions first, then the row's own): causal, and within the window if any."""
    query_at = torch.arange(shared + start, shared + start + q, device=device).unsqueeze(1)
    key_at = torch.arange(keys, device=device).unsqueeze(0)
    visible = key_at <= query_at
    if window is not None:
        visible &= query_at - key_at < window
    return visible


def _prompt_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, layer: int, scale: float,
                      window: int | None, evalboard_pass: _Pass) -> torch.Tensor:
    """Attention for passes that feed many tokens per row (a prompt): torch's fused kernel on
    each row's prefix + own keys (one row's copy of the prefix lasts one layer), which for long
    prompts beats the per-element operations of the decoding path."""
    import torch.nn.functional as F

    prefix = evalboard_pass.prefix
    shared = prefix.length if prefix is not None else 0
    outputs = []
    for r, sequence in enumerate(evalboard_pass.rows):
        start = sequence.length
        keys, values = sequence.write(layer, key[r], value[r])
        if prefix is not None and shared:
            prefix_k, prefix_v = prefix.keys[layer], prefix.values[layer]
            assert prefix_k is not None and prefix_v is not None
            keys, values = torch.cat([prefix_k[:, :shared], keys], dim=1), torch.cat([prefix_v[:, :shared], values], dim=1)
        plain_causal = shared + start == 0 and window is None
        mask = None if plain_causal else _visible(shared, start, query.shape[2], keys.shape[1], window, query.device)
        outputs.append(F.scaled_dot_product_attention(query[r : r + 1], keys.unsqueeze(0), values.unsqueeze(0),
                                                      attn_mask=mask, is_causal=plain_causal, scale=scale,
                                                      enable_gqa=True))
    return torch.cat(outputs).transpose(1, 2).contiguous()


def _softmax(scores: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis in float32, from elementwise operations. (torch.softmax hands
    even a few dozen rows to its thread pool; on a loaded CPU, waking those threads took up to
    40 ms a call, 80% of a decoding pass on a small model.)"""
    scores = scores.float()
    exponentials = (scores - scores.amax(dim=-1, keepdim=True)).exp()
    return exponentials / exponentials.sum(dim=-1, keepdim=True)


@functools.cache
def _register_attention() -> str:
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, _shared_prefix_attention)
    return ATTENTION_NAME


def supports(model: Any) -> bool:
    """Whether the model's attention layers go through transformers' attention interface (the
    models written for it: Llama, Mistral, Qwen, Gemma, Phi, ... and PEFT wrappers of them)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return bool(getattr(base, "_supports_attention_backend", False))


@dataclass
class _Row:
    job: GenerationJob
    prompt: tuple[int, ...]  # the part after the shared prefix
    began: float
    tokens: list[int] = field(default_factory=list)
    cache: _KeysValues | None = None
    admitted: int = 0  # admission order: the latest admitted is set aside first


class SharedPrefixGenerator:
    """Greedy continuous-batching generation over one model (see the module docstring)."""

    def __init__(self, model: Any, rows: int, budget_tokens: int, end_tokens: set[int],
                 decode: Callable[[list[int]], str]) -> None:
        self.model = model
        self.rows = max(1, rows)
        self.budget_tokens = budget_tokens
        self.end_tokens = end_tokens
        self.decode = decode
        self.device = next(model.parameters()).device
        config = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
        self._config = config
        self._layers = int(config.num_hidden_layers)
        self.stats = GenerationStats()
        import inspect

        forward = model.get_base_model().forward if hasattr(model, "get_base_model") else model.forward
        self._keep_last = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(forward).parameters else {}

    def run(self, jobs: Sequence[GenerationJob], on_result: Callable[[GenerationResult], None]) -> None:
        if any(not j.tokens for j in jobs):  # a row needs a token of its own to take logits from
            raise ValueError("a generation job has no prompt tokens; send such prompts to model.generate")
        self.stats.unique_prompt_tokens += _unique_tokens([j.tokens for j in jobs])
        previous = self._config._attn_implementation
        self._config._attn_implementation = _register_attention()
        try:
            with torch.inference_mode():
                for family in _families(list(jobs)):
                    self._run_family(family, on_result)
        finally:
            self._config._attn_implementation = previous

    # --- one family: a shared prefix and a queue of prompts ---------------------------------

    def _run_family(self, jobs: list[GenerationJob], on_result: Callable[[GenerationResult], None]) -> None:
        shared = _common_prefix_all([j.tokens for j in jobs]) if len(jobs) > 1 else 0
        shared = min(shared, min(len(j.tokens) for j in jobs) - 1)  # every row keeps a token of its own
        prefix = None
        if shared > 0:
            prefix = _KeysValues(self._layers)
            self._forward(prefix=None, rows=[prefix], ids=[list(jobs[0].tokens[:shared])], keep_last=True)
            self.stats.prompt_tokens_forwarded += shared
        began = time.perf_counter()
        waiting = deque(_Row(j, j.tokens[shared:], began) for j in jobs)
        active: list[_Row] = []
        admissions = 0
        while waiting or active:
            while waiting and len(active) < self.rows and self._fits(active, waiting[0]):
                row = waiting.popleft()
                admissions += 1
                row.admitted = admissions
                self._admit(prefix, row)
                active.append(row)
                active = self._finish_done(active, on_result)
            active = self._set_aside(active, waiting)
            if not active:
                continue
            logits = self._forward(prefix, [r.cache for r in active if r.cache is not None],
                                   [[r.tokens[-1]] for r in active], keep_last=False)
            self.stats.decode_passes += 1
            self.stats.decode_rows += len(active)
            self.stats.max_rows = max(self.stats.max_rows, len(active))
            if len(active) > 1:
                self.stats.max_shared_held = max(self.stats.max_shared_held, _held(active))
            for row, token in zip(active, logits.argmax(-1).tolist()):
                row.tokens.append(int(token))
            active = self._finish_done(active, on_result)

    def _fits(self, active: list[_Row], row: _Row) -> bool:
        """Whether the row's prompt, and a token more for each row, fit the budget next to the others."""
        return not active or _held(active) + len(row.prompt) + len(row.tokens) + len(active) + 1 <= self.budget_tokens

    def _admit(self, prefix: _KeysValues | None, row: _Row) -> None:
        """Forward the row's prompt (and, for a row set aside earlier, its tokens so far) and
        take its next token."""
        row.cache = _KeysValues(self._layers)
        logits = self._forward(prefix, [row.cache], [list(row.prompt) + row.tokens], keep_last=True)
        if row.tokens:
            self.stats.recomputed_tokens += len(row.prompt) + len(row.tokens)
        else:
            self.stats.prompt_tokens_forwarded += len(row.prompt)
        row.tokens.append(int(logits.argmax(-1)[0]))

    def _set_aside(self, active: list[_Row], waiting: deque[_Row]) -> list[_Row]:
        """While the next pass (a token more per row) would exceed the budget, free the latest
        admitted row's keys/values: it goes back to the front of the queue, keeping its tokens."""
        while len(active) > 1 and _held(active) + len(active) > self.budget_tokens:
            latest = max(active, key=lambda r: r.admitted)
            latest.cache = None
            active = [r for r in active if r is not latest]
            waiting.appendleft(latest)
        return active

    def _finish_done(self, active: list[_Row], on_result: Callable[[GenerationResult], None]) -> list[_Row]:
        still = []
        for row in active:
            if self._done(row):
                row.cache = None
                on_result(GenerationResult(row.job.index, row.tokens, len(row.job.tokens),
                                           time.perf_counter() - row.began))
            else:
                still.append(row)
        return still

    def _done(self, row: _Row) -> bool:
        if row.tokens[-1] in self.end_tokens or len(row.tokens) >= row.job.max_new_tokens:
            return True
        if not row.job.stop:
            return False
        window = max(len(stop.encode()) for stop in row.job.stop) + STOP_MARGIN
        text = self.decode(row.tokens[-window:])
        return any(stop and stop in text for stop in row.job.stop)

    def _forward(self, prefix: _KeysValues | None, rows: list[_KeysValues], ids: list[list[int]],
                 keep_last: bool) -> torch.Tensor:
        """One pass: row r's `ids` continue sequence `rows[r]` (all rows feed as many tokens).
        Returns the last position's logits, rows x vocabulary (float32)."""
        shared = prefix.length if prefix is not None else 0
        positions = [[shared + seq.length + i for i in range(len(tokens))] for seq, tokens in zip(rows, ids)]
        extra = self._keep_last if keep_last else {}
        output = self.model(input_ids=torch.tensor(ids, device=self.device),
                            position_ids=torch.tensor(positions, device=self.device),
                            use_cache=False, evalboard_pass=_Pass(prefix, rows), **extra)
        for seq, tokens in zip(rows, ids):
            seq.length += len(tokens)
        return output.logits[:, -1].float()


def _held(rows: list[_Row]) -> int:
    """Tokens whose keys/values the rows hold (the shared prefix not counted)."""
    return sum(r.cache.length for r in rows if r.cache is not None)


def _families(jobs: list[GenerationJob]) -> list[list[GenerationJob]]:
    """Prompts that share at least FAMILY_MIN_SHARED tokens with a lexicographic neighbour form a
    family (a few-shot task); the rest are pooled into one. Each keeps the submitted order."""
    ordered = sorted(jobs, key=lambda j: j.tokens)
    families: list[list[GenerationJob]] = []
    pool: list[GenerationJob] = []
    current: list[GenerationJob] = []
    for i, job in enumerate(ordered):
        if i and _common_prefix(ordered[i - 1].tokens, job.tokens) >= FAMILY_MIN_SHARED:
            current.append(job)
            continue
        if len(current) > 1:
            families.append(current)
        else:
            pool += current
        current = [job]
    if len(current) > 1:
        families.append(current)
    else:
        pool += current
    groups = families + ([pool] if pool else [])
    return [sorted(group, key=lambda j: j.index) for group in groups]
