"""The shared-prefix continuous batcher (models/generation.py) against `model.generate` on each
prompt alone, token for token, on small random Llama, Mistral (sliding window) and Gemma 2
(alternating sliding/full layers, soft-capping) models: with a few-shot-like shared block and
lone prompts, rows finishing at an end token or at their own token limit, fewer rows than
prompts (rows are refilled), and a budget so small that rows are set aside and recomputed. Stop
strings are found by decoding a row's last tokens only, where a full decode finds them."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

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


@pytest.mark.parametrize("kind,attention,softcap", [("llama", "sdpa", None), ("mistral", "sdpa", None),
                                                    ("gemma2", "eager", None), ("gemma2", "eager", 2.0)])
def test_greedy_tokens_equal_generate_on_each_prompt_alone(kind: str, attention: str, softcap: float | None) -> None:
    model = _model(kind, attention, attn_logit_softcapping=softcap)  # softcap: Gemma 2's on attention scores
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


def test_a_stop_spanning_tokens_cuts_where_a_full_decode_finds_it(tiny_model: Path) -> None:
    """Real byte-level BPE: each stop is a stretch of the free answer across several tokens
    (one of them far into it, past the decoded tail); the row ends at the first token after
    which decoding the whole answer shows a stop, as when the whole answer was decoded."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    decode = lambda tokens: str(tokenizer.decode(tokens, skip_special_tokens=True))  # noqa: E731
    prompt = tuple(tokenizer("def main(argv):\n    ")["input_ids"])
    full = _alone(model, GenerationJob(0, prompt, 60))
    jobs, expected = [], {}
    for index, (start, end) in enumerate(((3, 6), (40, 44), (25, 26))):
        before = decode(full[:start])
        stop = decode(full[:end])[len(before) - 1:]  # the character before, and tokens start..end-1
        first = next(n for n in range(1, len(full) + 1) if stop in decode(full[:n]))
        jobs.append(GenerationJob(index, prompt, 60, ("\x00never", stop)))
        expected[index] = full[:first]
    assert max(len(t) for t in expected.values()) > 20  # one stop lies beyond a short tail
    results: list[GenerationResult] = []
    SharedPrefixGenerator(model, 2, 4096, {NO_END}, decode).run(jobs, results.append)
    assert {r.index: r.tokens for r in results} == expected


def test_a_prompt_of_no_tokens_is_refused() -> None:
    """A row needs a prompt token of its own (an empty one made the shared prefix -1 and fed
    every other row only its last token); the hf adapter sends such prompts to model.generate."""
    model = _model("llama", "sdpa")
    jobs = [GenerationJob(0, (1, 5, 9), 4), GenerationJob(1, (), 4)]
    with pytest.raises(ValueError, match="no prompt tokens"):
        SharedPrefixGenerator(model, 2, 4096, {NO_END}, lambda tokens: "").run(jobs, lambda result: None)
