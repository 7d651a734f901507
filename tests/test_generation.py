"""The shared-prefix continuous batcher (models/generation.py) against `model.generate` on each
prompt alone, token for token, on small random Llama, Mistral (sliding window) and Gemma 2
(alternating sliding/full layers, soft-capping) models: with a few-shot-like shared block and
lone prompts, rows finishing at an end token or at their own token limit, fewer rows than
prompts (rows are refilled), and a budget so small that rows are set aside and recomputed."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch
from evalboard.models.generation import GenerationJob, GenerationResult, SharedPrefixGenerator
from test_prefix_scoring import VOCAB, _model

NO_END = VOCAB + 5  # a token the model never produces


def _jobs() -> list[GenerationJob]:
    rng = random.Random(1)
    block = [1] + [rng.randrange(8, VOCAB) for _ in range(40)]
    prompts = [block + [rng.randrange(8, VOCAB) for _ in range(rng.randint(1, 12))] for _ in range(6)]
    prompts += [[1] + [rng.randrange(8, VOCAB) for _ in range(rng.randint(2, 15))] for _ in range(3)]
    return [GenerationJob(i, tuple(p), max_new_tokens=rng.randint(3, 24)) for i, p in enumerate(prompts)]


def _alone(model: torch.nn.Module, job: GenerationJob) -> list[int]:
    with torch.inference_mode():
        out = model.generate(torch.tensor([job.tokens]), attention_mask=torch.ones(1, len(job.tokens), dtype=torch.long),
                             max_new_tokens=job.max_new_tokens, do_sample=False, eos_token_id=NO_END, pad_token_id=0)
    return out[0, len(job.tokens):].tolist()


def _frequent_token(generations: list[list[int]]) -> int:
    """A token some (not all) of the generations produce: as the end token, some rows end early."""
    counts = Counter(t for tokens in generations for t in set(tokens))
    return next(t for t, n in counts.most_common() if n < len(generations))


@pytest.mark.parametrize("kind,attention", [("llama", "sdpa"), ("mistral", "sdpa"), ("gemma2", "eager")])
def test_greedy_tokens_equal_generate_on_each_prompt_alone(kind: str, attention: str) -> None:
    model = _model(kind, attention)
    jobs = _jobs()
    full = {job.index: _alone(model, job) for job in jobs}
    end = _frequent_token(list(full.values()))
    # what generate(eos_token_id=end) gives: greedy search is the same until the first end token
    expected = {i: tokens[: tokens.index(end) + 1] if end in tokens else tokens for i, tokens in full.items()}
    for rows, budget in ((3, 4096), (8, 20)):
        results: list[GenerationResult] = []
        generator = SharedPrefixGenerator(model, rows, budget, {end}, lambda tokens: "")
        generator.run(jobs, results.append)
        assert {r.index: r.tokens for r in results} == expected, (rows, budget)
        summary = generator.stats.summary()
        assert summary["generation_prompt_tokens_forwarded"] < sum(len(j.tokens) for j in jobs)  # the block once
        assert (generator.stats.recomputed_tokens > 0) == (budget == 20)
    assert model.config._attn_implementation == attention  # restored after the passes


def test_a_row_stops_at_its_own_stop_sequence() -> None:
    model = _model("llama", "sdpa")
    job = GenerationJob(0, (1, 5, 9, 11), max_new_tokens=30)
    full = _alone(model, GenerationJob(0, job.tokens, 30))
    text_of = lambda tokens: " ".join(map(str, tokens))  # noqa: E731 - a stand-in detokenizer
    stop = f" {full[4]} {full[5]}"  # appears once tokens 4 and 5 are out
    results: list[GenerationResult] = []
    SharedPrefixGenerator(model, 2, 4096, {NO_END}, text_of).run(
        [GenerationJob(0, job.tokens, 30, (stop,)), GenerationJob(1, job.tokens, 30)], results.append)
    by_index = {r.index: r.tokens for r in results}
    assert stop in text_of(by_index[0]) and stop not in text_of(by_index[0][:-1])
    assert by_index[1] == full  # its neighbour ran on to its own limit
