"""Loglikelihood scoring that computes every shared prefix once (KV-cache reuse and tries).

A document's choices share its context, and documents often share a few-shot block (MMLU's five
dev examples open every question of a subject). Contexts are scored in waves of up to `batch`, one
forward pass each: the block the whole wave shares is forwarded once (and kept for the next wave
when it shares it too); on top of it, each row of the wave is a trie of model inputs (contexts
that begin alike, then each context's continuations) in which every token attends only to its
own ancestors (a custom attention mask and true position ids). See docs/prefix-sharing.md.

The numbers equal a full forward pass up to float rounding (~1e-6 in float32); the test suite
compares them with plain forward passes (tests/test_prefix_scoring.py) and with lm-eval. They are
bit for bit the same at every batch size: every row's layout, width and block are fixed by the
requests alone, and MKL's products are made row-invariant (MKL_CBWR, set in evalboard/__init__).
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from evalboard.models.memory import release_free_memory

FAMILY_MIN_SHARED = 32  # tokens two contexts must share to be batched as one family
ROW_MIN_SHARED = 4  # tokens beyond the block two neighbouring contexts must share to share a row
ROW_MAX_CONTEXTS = 8  # contexts one row may hold
ROW_WIDTH_STEP = 4  # rows are padded to a multiple of this (or of a larger step, see padded_width)
# Positions whose full-vocabulary logits one pass computes: bounds a pass's memory (this many
# rows of vocabulary floats) while keeping passes large enough to be efficient on a CPU.
MAX_LOGIT_POSITIONS = 512
LOGSOFTMAX_CHUNK = 128  # logit rows turned into log-probabilities at a time

# (request index, log P(continuation), continuation was greedy, seconds spent on it)
ScoreCallback = Callable[[int, float, bool, float], None]


@dataclass
class PrefixStats:
    forwarded_tokens: int = 0  # tokens pushed through the model (padding included)
    unique_tokens: int = 0  # distinct positions of the prefix tree: what any method must compute
    forward_passes: int = 0

    @property
    def efficiency(self) -> float:
        return self.unique_tokens / self.forwarded_tokens if self.forwarded_tokens else 1.0


@dataclass
class _Group:
    """A context (token ids) and the requests continuing it."""

    context: tuple[int, ...]
    members: list[tuple[int, list[int]]] = field(default_factory=list)  # (request index, continuation)


def truncate_pair(context: list[int], continuation: list[int], max_length: int) -> tuple[list[int], list[int]]:
    """Keep the last max_length + 1 tokens of context + continuation, as lm-eval does; the model
    input is everything but the last token."""
    whole = (context + continuation)[-(max_length + 1):]
    if len(continuation) >= len(whole):
        return whole[:1], whole[1:]
    return whole[: len(whole) - len(continuation)], continuation


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _common_prefix_all(sequences: Sequence[Sequence[int]]) -> int:
    first, last = min(map(tuple, sequences)), max(map(tuple, sequences))  # lexicographic extremes bound everyone's prefix
    return _common_prefix(first, last)


def _right_padded(rows: Sequence[Sequence[int]], pad_id: int, width: int) -> torch.Tensor:
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(list(row), dtype=torch.long)
    return ids


def padded_width(tokens: int) -> int:
    """The width a row of `tokens` tokens is padded to: the next multiple of a step that grows
    with the length (4 up to 64 tokens, then an eighth of the power of two below), so padding
    stays under 12.5% and a row's width depends on the row alone, never on its wave."""
    step = max(ROW_WIDTH_STEP, 1 << max(0, tokens.bit_length() - 4))
    return -(-tokens // step) * step


@dataclass
class _Wave:
    """One forward pass: rows of contexts of one family, all padded to `width`, on top of the
    family's shared block (its first `shared_len` tokens)."""

    rows: list[list[_Group]]
    shared_len: int
    width: int


def _waves(groups: list[_Group], size: int, share_blocks: bool = True) -> list[_Wave]:
    """Forward passes (waves) of rows of contexts. Contexts that share a long prefix with a
    lexicographic neighbour (a few-shot block) form a family and are batched within it, so the
    block is computed once; all other contexts are pooled. Neighbours of a family or of the pool
    that share ROW_MIN_SHARED more tokens go in one row (their common tokens are forwarded once),
    up to ROW_MAX_CONTEXTS contexts or MAX_LOGIT_POSITIONS logits. A wave holds rows of one
    family and one padded width, up to `size` contexts (a row is never split) and
    MAX_LOGIT_POSITIONS logits.

    Everything that shapes a request's arithmetic (its family's block, its row, the row's width)
    is decided from the requests alone, never from `size` or from which rows share a wave, so a
    loglikelihood does not depend on the batch size (docs/prefix-sharing.md)."""
    ordered = sorted(groups, key=lambda g: g.context)
    family, current = [], -1
    for i, group in enumerate(ordered):
        if i == 0 or _common_prefix(ordered[i - 1].context, group.context) < FAMILY_MIN_SHARED:
            current += 1
        family.append(current)
    members = Counter(family)
    pooled = [family[i] if members[family[i]] > 1 else -1 for i in range(len(ordered))]
    shared: dict[int, int] = {}  # tokens every context of a family (or the pool) begins with, short of its last
    for key in set(pooled):
        contexts = [ordered[i].context[:-1] for i in range(len(ordered)) if pooled[i] == key]
        common = _common_prefix_all(contexts) if share_blocks else 0
        shared[key] = common if common >= FAMILY_MIN_SHARED else 0

    rows: list[list[int]] = []  # indices into `ordered`
    for i, key in enumerate(pooled):
        last = rows[-1][-1] if rows else None
        if (last is not None and pooled[last] == key and len(rows[-1]) < ROW_MAX_CONTEXTS
                and _row_size([ordered[j] for j in rows[-1] + [i]], shared[key])[1] <= MAX_LOGIT_POSITIONS
                and _common_prefix(ordered[last].context, ordered[i].context) - shared[key] >= ROW_MIN_SHARED):
            rows[-1].append(i)
        else:
            rows.append([i])
    sizes = [_row_size([ordered[i] for i in row], shared[pooled[row[0]]]) for row in rows]
    widths = [padded_width(tokens) for tokens, _ in sizes]

    waves: list[_Wave] = []
    wave_key: tuple[int, int] | None = None  # (family, width): what the rows of one wave share
    contexts_in, logits = 0, 0
    for r in sorted(range(len(rows)), key=lambda r: (pooled[rows[r][0]], widths[r], ordered[rows[r][0]].context)):
        row, row_key = [ordered[i] for i in rows[r]], (pooled[rows[r][0]], widths[r])
        needed = sizes[r][1]
        if waves and wave_key == row_key and contexts_in + len(row) <= size and logits + needed <= MAX_LOGIT_POSITIONS:
            waves[-1].rows.append(row)
            contexts_in, logits = contexts_in + len(row), logits + needed
        else:
            waves.append(_Wave([row], shared[row_key[0]], widths[r]))
            wave_key, contexts_in, logits = row_key, len(row), needed
    return waves


def _unique_tokens(sequences: list[tuple[int, ...]]) -> int:
    total, previous = 0, tuple[int, ...]()
    for sequence in sorted(set(sequences)):
        total += len(sequence) - _common_prefix(previous, sequence)
        previous = sequence
    return total


@functools.cache
def _shared_prefix_layer() -> type:
    from transformers.cache_utils import DynamicLayer

    class SharedPrefixLayer(DynamicLayer):
        """One layer's keys/values of the wave's shared block, stored once (batch 1). Each call
        returns them, broadcast to the batch, followed by the batch's own keys/values, which are
        not kept: nothing reads them after the pass, so no cache of the whole wave builds up."""

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
            rows = key_states.shape[0]
            assert self.keys is not None and self.values is not None  # filled with the block before any call
            return (torch.cat([self.keys.expand(rows, -1, -1, -1), key_states], dim=-2),
                    torch.cat([self.values.expand(rows, -1, -1, -1), value_states], dim=-2))

    return SharedPrefixLayer


def _shared_prefix_cache(kv: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    from transformers import DynamicCache

    cache = DynamicCache()
    cache.layers = []
    for keys, values in kv:
        layer = _shared_prefix_layer()()
        layer.lazy_initialization(keys, values)
        layer.keys, layer.values = keys, values
        cache.layers.append(layer)
    return cache


@dataclass
class _Row:
    """One row of a wave: a trie of its requests' model inputs after the shared block (each
    context followed by each of its continuations but the last token), laid out in depth-first
    order, so that whatever two inputs begin with is forwarded once. A token sees the shared
    block and its own ancestors in the trie. `targets` are (position in the row, token whose
    log-probability that position's logits give, request index)."""

    tokens: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)  # -1: a child of the shared block
    targets: list[tuple[int, int, int]] = field(default_factory=list)

    @classmethod
    def layout(cls, groups: list[_Group], shared_len: int) -> _Row:
        row = cls()
        inputs = sorted((g.context[shared_len:] + tuple(c[:-1]), len(g.context) - shared_len, index, c)
                        for g in groups for index, c in g.members)
        previous: tuple[int, ...] = ()
        path: list[int] = []  # the trie nodes of the previous input, by depth
        for sequence, context_len, index, continuation in inputs:
            del path[_common_prefix(previous, sequence):]  # sorted inputs: new nodes in depth-first order
            for depth in range(len(path), len(sequence)):
                row.tokens.append(sequence[depth])
                row.positions.append(shared_len + depth)
                row.parents.append(path[-1] if path else -1)
                path.append(len(row.tokens) - 1)
            row.targets += [(path[context_len - 1 + j], token, index) for j, token in enumerate(continuation)]
            previous = sequence
        return row

    def visibility(self, width: int) -> torch.Tensor:
        """(width x width) booleans: query token q may attend to key token k of this row, i.e. k
        is q or an ancestor of q: in depth-first order, k <= q <= the last token under k."""
        n = len(self.tokens)
        last_under = list(range(n))
        for node in range(n - 1, -1, -1):
            if self.parents[node] >= 0:
                last_under[self.parents[node]] = max(last_under[self.parents[node]], last_under[node])
        order = torch.arange(width)
        ends = torch.cat([torch.tensor(last_under, dtype=torch.long), order[n:]])
        return (order.unsqueeze(0) <= order.unsqueeze(1)) & (order.unsqueeze(1) <= ends.unsqueeze(0))


def _row_size(groups: list[_Group], shared_len: int) -> tuple[int, int]:
    """(tokens in a row of these contexts, positions whose logits it needs)."""
    inputs = [g.context[shared_len:] + tuple(c[:-1]) for g in groups for _, c in g.members]
    return _unique_tokens(inputs), sum(len(c) for g in groups for _, c in g.members)


class PrefixScorer:
    def __init__(self, model: Any, max_length: int, batch: int, pad_id: int) -> None:
        self.model = model
        self.max_length = max_length
        self.batch = max(1, batch)  # contexts per wave
        self.pad_id = pad_id
        self._held: tuple[int, ...] = ()  # the tokens whose keys/values _held_kv holds
        self._held_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self.device = next(model.parameters()).device
        self.stats = PrefixStats()
        config = model.config.get_text_config(decoder=True) if hasattr(model.config, "get_text_config") else model.config
        self._window, self._mixed_window = _sliding_window(config)
        # a cache of sliding-window layers keeps only the window: share blocks only when nothing slides
        self._share_blocks = self._window is None
        self._eager = getattr(config, "_attn_implementation", "sdpa") == "eager"
        self._dtype = next(model.parameters()).dtype
        import inspect

        # extending the prefix needs no logits: skip the vocabulary projection where supported
        accepts = "logits_to_keep" in inspect.signature(model.forward).parameters
        self._keep_last = {"logits_to_keep": 1} if accepts else {}

    def score(self, pairs: Sequence[tuple[list[int], list[int]]], on_score: ScoreCallback) -> None:
        groups: dict[tuple[int, ...], _Group] = {}
        for index, (context, continuation) in enumerate(pairs):
            context, continuation = truncate_pair(list(context), list(continuation), self.max_length)
            key = tuple(context)
            groups.setdefault(key, _Group(key)).members.append((index, continuation))
        self.stats.unique_tokens += _unique_tokens(
            [g.context + tuple(c[:-1]) for g in groups.values() for _, c in g.members])
        self._held, self._held_kv = (), None  # a block kept from an earlier call would shape this one's
        with torch.inference_mode():
            for wave in _waves(list(groups.values()), self.batch, self._share_blocks):
                self._score_wave(wave, on_score)
                release_free_memory()

    # --- the shared block -----------------------------------------------------------------

    def _shared_cache(self, shared: tuple[int, ...]) -> list | None:
        """Keys/values of the wave's common prefix, reusing the previous wave's where they agree
        (consecutive waves of MMLU questions share their subject's few-shot block)."""
        keep = _common_prefix(self._held, shared)
        kv = self._held_kv
        if kv is not None and keep < len(self._held):
            kv = [(k[:, :, :keep], v[:, :, :keep]) for k, v in kv] if keep else None
        if keep < len(shared):
            kv = self._extend(kv, list(shared[keep:]))
        self._held, self._held_kv = shared, kv
        return kv

    def _extend(self, kv: list | None, tokens: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The cache after feeding `tokens` on top of `kv` (None: an empty prefix)."""
        from transformers import DynamicCache

        ids = torch.tensor([tokens], dtype=torch.long, device=self.device)
        past = None
        if kv:
            past = DynamicCache(config=self.model.config)
            for layer, (keys, values) in enumerate(kv):
                past.update(keys, values, layer)
        output = self.model(ids, past_key_values=past, use_cache=True, **self._keep_last)
        self._count(len(tokens))
        return [(layer.keys, layer.values) for layer in output.past_key_values.layers]

    # --- one wave: one forward pass -------------------------------------------------------

    def _score_wave(self, wave: _Wave, on_score: ScoreCallback) -> None:
        began = time.perf_counter()
        shared_len = wave.shared_len
        kv = self._shared_cache(wave.rows[0][0].context[:shared_len]) if shared_len else None
        rows = [_Row.layout(groups, shared_len) for groups in wave.rows]
        ids = _right_padded([row.tokens for row in rows], self.pad_id, wave.width)
        positions = _right_padded([row.positions for row in rows], 0, wave.width)
        mask = self._attention_mask(rows, positions, shared_len)
        past = _shared_prefix_cache(kv) if kv else None
        where = [(r, position) for r, row in enumerate(rows) for position, _, _ in row.targets]
        with self._logits_only_at(where):
            logits = self.model(ids.to(self.device), past_key_values=past, attention_mask=mask,
                                position_ids=positions.to(self.device), use_cache=past is not None).logits[0]
        self._count(ids.numel())
        targets = [(token, index) for row in rows for _, token, index in row.targets]
        totals: dict[int, list] = {}  # request index -> [log-probability, every token was the argmax]
        for start in range(0, len(targets), LOGSOFTMAX_CHUNK):
            chunk = targets[start : start + LOGSOFTMAX_CHUNK]
            logprobs = torch.log_softmax(logits[start : start + len(chunk)].float(), dim=-1)
            tokens = torch.tensor([token for token, _ in chunk], device=logprobs.device)
            picked = logprobs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).tolist()
            greedy = (logprobs.argmax(-1) == tokens).tolist()
            for (_, index), value, is_best in zip(chunk, picked, greedy):
                total = totals.setdefault(index, [0.0, True])
                total[0] += value
                total[1] = total[1] and is_best
        elapsed = (time.perf_counter() - began) / len(totals)
        for index, (logprob, is_greedy) in totals.items():
            on_score(index, logprob, is_greedy, elapsed)

    def _attention_mask(self, rows: list[_Row], positions: torch.Tensor, shared_len: int) -> Any:
        """Who sees whom in a wave (rows x 1 x queries x (shared block + row)): everyone sees the
        shared block, and within a row what `_Row.visibility` says. A dict per attention kind
        when only some layers slide."""
        width = positions.shape[1]
        own = torch.stack([row.visibility(width) for row in rows])
        visible = torch.cat([torch.ones(len(rows), width, shared_len, dtype=torch.bool), own], dim=-1)
        if self._window is not None:
            key_positions = torch.cat([torch.arange(shared_len).expand(len(rows), -1), positions], dim=-1)
            near = visible & (positions.unsqueeze(2) - key_positions.unsqueeze(1) < self._window)
            masks = {"full_attention": visible, "sliding_attention": near} if self._mixed_window else near
        else:
            masks = visible
        return self._as_model_mask(masks)

    def _as_model_mask(self, masks: Any) -> Any:
        if isinstance(masks, dict):
            return {kind: self._as_model_mask(mask) for kind, mask in masks.items()}
        mask = masks.unsqueeze(1).to(self.device)
        if self._eager:  # eager attention adds the mask to the scores
            blocked = torch.finfo(self._dtype).min
            return torch.zeros(mask.shape, dtype=self._dtype, device=self.device).masked_fill(~mask, blocked)
        return mask

    @contextmanager
    def _logits_only_at(self, where: list[tuple[int, int]]) -> Iterator[None]:
        """Make the model's output layer project only the hidden states at `where` ((row,
        position) pairs, in that order): a pass then returns logits of shape (1, len(where),
        vocabulary) instead of rows x width x vocabulary. Whatever the model does after its
        output layer (logit soft-capping, scaling) still applies."""
        rows = torch.tensor([r for r, _ in where], device=self.device)
        columns = torch.tensor([c for _, c in where], device=self.device)

        def gather(module: Any, args: tuple) -> tuple:
            return (args[0][rows, columns].unsqueeze(0), *args[1:])

        handle = self.model.get_output_embeddings().register_forward_pre_hook(gather)
        try:
            yield
        finally:
            handle.remove()

    def _count(self, tokens: int) -> None:
        self.stats.forwarded_tokens += tokens
        self.stats.forward_passes += 1


def _sliding_window(config: Any) -> tuple[int | None, bool]:
    """(the sliding attention window, whether only some layers slide) of a model config."""
    window = getattr(config, "sliding_window", None)
    kinds = set(getattr(config, "layer_types", None) or [])
    if not window or (kinds and "sliding_attention" not in kinds):
        return None, False
    return int(window), "full_attention" in kinds
