"""Tiny random models for fast tests: a byte-level BPE tokenizer trained on the standard
library's sources and a 2-layer Llama (hidden 64), built and saved offline in about a second."""

from __future__ import annotations

import sysconfig
from collections.abc import Iterator
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def _training_text() -> Iterator[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.glob("*.py"))[:80]:
        yield path.read_text(encoding="utf-8", errors="ignore")


def build_tiny_llama(directory: Path, seed: int = 0, max_positions: int = 2048, add_bos: bool = True,
                     vocab_size: int = 512, hidden_size: int = 64) -> Path:
    """A float32 random Llama whose tokenizer (optionally) prepends BOS like Llama's does, with a
    minimal chat template. The output layer is scaled up so choices get clearly different scores
    and greedy tokens are not near-ties. Returns `directory`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_training_text(), trainer=trainer)
    bos_id = tok.token_to_id("<s>")
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos_id)]
        )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(directory)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=hidden_size, intermediate_size=2 * hidden_size, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=max_positions,
        bos_token_id=bos_id, eos_token_id=tok.token_to_id("</s>"), tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).to(torch.float32)
    with torch.no_grad():
        model.lm_head.weight.mul_(30.0)
    model.save_pretrained(directory, safe_serialization=True)
    return directory


def build_random_lora(base: Path, directory: Path, seed: int = 1, scale: float = 0.5) -> Path:
    """A LoRA adapter on the tiny model with non-zero lora_B, so it really changes outputs."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0,
                        task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, scale)
    peft_model.save_pretrained(directory)
    return directory
