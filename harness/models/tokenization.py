"""Tokenisation shared by every adapter that scores text itself (hf:, openai-compatible:):
the same context/continuation boundary as lm-eval's `_encode_pair`, so loglikelihoods agree."""

from __future__ import annotations

import hashlib
from typing import Any

from evalboard.errors import UserError
from evalboard.fingerprint import stable_hash
from evalboard.requests import Prompt


def encode(tokenizer: Any, text: str) -> list[int]:
    """The tokenizer's own special tokens (BOS for Llama-likes), unless the text already starts with
    BOS (a rendered chat template usually does)."""
    bos = tokenizer.bos_token
    add_special = not (bos and text.startswith(bos))
    return list(tokenizer.encode(text, add_special_tokens=add_special))


def prefix_token(tokenizer: Any) -> int:
    """What an empty context is: BOS, else EOS (lm-eval's prefix_token_id)."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context tokens, continuation tokens). Trailing spaces of the context move to the
    continuation; the continuation's tokens are what follows the context's tokens in the encoding
    of the whole string. An empty context is the prefix token (BOS, else EOS), as in lm-eval."""
    if not context:
        prefix = prefix_token(tokenizer)
        tokens = list(tokenizer.encode(continuation, add_special_tokens=False))
        if tokens and tokens[0] == prefix:
            return tokens[:1], tokens[1:]
        return [prefix], tokens
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = encode(tokenizer, context + continuation)
    context_tokens = encode(tokenizer, context)
    return context_tokens, whole[len(context_tokens) :]


def render_chat(tokenizer: Any, prompt: Prompt) -> str:
    """A prompt as the text the model reads: chat messages through the tokenizer's template."""
    if isinstance(prompt, str):
        return prompt
    if not getattr(tokenizer, "chat_template", None):
        raise UserError("the tokenizer has no chat template, so chat prompts cannot be scored; "
                        "drop --apply-chat-template or pass tokenizer=PATH with a chat template")
    messages = [{"role": role, "content": content} for role, content in prompt]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _added_special_tokens(tokenizer: Any) -> tuple[str, str]:
    """The text of the special tokens the tokenizer adds around any text it encodes (BOS before,
    for Llama-likes; EOS after, for a few), found by encoding a probe with and without them."""
    plain = list(tokenizer.encode("x", add_special_tokens=False))
    full = list(tokenizer.encode("x", add_special_tokens=True))
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            end = start + len(plain)
            return tokenizer.decode(full[:start]), tokenizer.decode(full[end:])
    return "", ""


def model_input_text(tokenizer: Any, prompt: Prompt) -> str:
    """The exact text the model reads for a prompt: the chat template's output for messages, with
    the special tokens `encode` adds written out (a leading BOS the template did not put there)."""
    text = render_chat(tokenizer, prompt)
    bos = tokenizer.bos_token
    if bos and text.startswith(bos):
        return text  # encode adds nothing to a text that already starts with BOS
    before, after = _added_special_tokens(tokenizer)
    return f"{before}{text}{after}"


def tokenizer_identity(tokenizer: Any) -> dict[str, Any]:
    template = getattr(tokenizer, "chat_template", None) or ""
    return {
        "tokenizer": stable_hash(tokenizer.get_vocab())[:16],
        "chat_template": hashlib.sha256(template.encode()).hexdigest()[:16],
    }
