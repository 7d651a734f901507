"""lm-eval's command-line spellings, translated into evalboard's, so a pasted lm-eval command runs:
`--model hf --model_args pretrained=X,dtype=float` becomes the spec `hf:X,dtype=float32`,
`--gen_kwargs temperature=0.7,until=Q:` the generation options, `--batch_size auto:4` auto.

Written here rather than imported from lm-eval: lm-eval is not a dependency of evalboard (its CLI
module pulls in its whole task registry), and only its argument grammar is needed: `key=value`
pairs split on commas outside brackets and quotes, a value read as a Python literal when it is one,
or a JSON object for the whole argument.
"""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Sequence
from typing import Any

from evalboard.errors import UserError

logger = logging.getLogger(__name__)

# lm-eval's model names -> evalboard's schemes (those that map; anything else is a one-line error)
LM_EVAL_MODELS = {
    "hf": "hf", "hf-auto": "hf", "huggingface": "hf",
    "vllm": "vllm",
    "local-completions": "openai-compatible", "local-chat-completions": "openai-compatible",
    "openai-completions": "openai", "openai-chat-completions": "openai",
    "anthropic": "anthropic", "anthropic-chat": "anthropic", "anthropic-chat-completions": "anthropic",
}
_RENAMED = {"peft": "adapter", "lora_local_path": "adapter", "num_concurrent": "concurrency"}
_DTYPES = {"float": "float32", "half": "float16", "bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
# model_args that say how lm-eval batches requests: evalboard sizes its own requests (--batch-size)
_IGNORED = {"batch_size", "max_batch_size", "tokenized_requests", "tokenizer_backend"}


def _split_top_level(text: str) -> list[str]:
    """Split on the commas outside brackets, braces and quotes (`until=["a","b"],top_k=5`)."""
    parts: list[str] = []
    buffer: list[str] = []
    depth, quote = 0, None
    for char in text:
        if quote is not None:
            quote = None if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[({":
            depth += 1
        elif char in "])}":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            parts.append("".join(buffer))
            buffer = []
            continue
        buffer.append(char)
    parts.append("".join(buffer))
    return [part.strip() for part in parts if part.strip()]


def _value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_key_values(values: str | Sequence[str] | None, flag: str) -> dict[str, Any]:
    """`key=value,key2=value2` (or several such words, or one JSON object) -> a dict."""
    if values is None:
        return {}
    result: dict[str, Any] = {}
    for word in [values] if isinstance(values, str) else values:
        if word.strip().startswith("{"):
            try:
                loaded = json.loads(word)
            except json.JSONDecodeError as exc:
                raise UserError(f"{flag}: {word!r} is not a JSON object ({exc.msg})") from None
            result.update(loaded)
            continue
        for item in _split_top_level(word):
            key, eq, value = item.partition("=")
            if not eq or not key.strip():
                raise UserError(f"{flag}: {item!r} is not key=value")
            result[key.strip()] = _value(value.strip())
    return result


def _spec_text(value: Any) -> str:
    text = str(value)
    if "," in text:
        raise UserError(f"--model_args value {text!r} holds a comma, which a model spec cannot carry")
    return text


def model_spec(model: str, model_args: str | Sequence[str] | None) -> str:
    """The model spec for `--model` (a spec, or an lm-eval model name) and `--model_args`."""
    args = parse_key_values(model_args, "--model_args")
    scheme = LM_EVAL_MODELS.get(model)
    if scheme is None:
        if ":" not in model:
            raise UserError(f"model spec {model!r} is not of the form SCHEME:TARGET (e.g. hf:PATH_OR_ID), nor an "
                            f"lm-eval model name evalboard maps ({', '.join(LM_EVAL_MODELS)}) with --model_args")
        return ",".join([model, *(f"{_RENAMED.get(k, k)}={_spec_text(v)}" for k, v in args.items())])
    ignored = sorted(set(args) & _IGNORED)
    if ignored:
        logger.warning("warning: --model_args %s ignored: evalboard sizes its own requests (--batch-size, "
                       "--concurrency)", ", ".join(ignored))
    options = {_RENAMED.get(k, k): v for k, v in args.items() if k not in _IGNORED}
    if "dtype" in options:
        options["dtype"] = _DTYPES.get(str(options["dtype"]), options["dtype"])
    if scheme in ("hf", "vllm"):
        target = options.pop("pretrained", None)
        if target is None:
            raise UserError(f"--model {model} needs --model_args pretrained=NAME_OR_PATH")
    else:
        name = options.pop("model", None)
        if name is None:
            raise UserError(f"--model {model} needs --model_args model=NAME")
        target = str(name)
        if scheme == "openai-compatible":
            base_url = options.pop("base_url", None)
            if base_url is None:
                raise UserError(f"--model {model} needs --model_args base_url=http://HOST:PORT/v1/completions")
            base = str(base_url).rstrip("/").removesuffix("/completions").removesuffix("/chat")
            target = f"{base}#{name}"
    pairs = [f"{k}={_spec_text(v)}" for k, v in options.items()]
    return ",".join([f"{scheme}:{_spec_text(target)}", *pairs])


# --gen_kwargs keys -> RunOptions fields (lm-eval's names and the transformers ones it passes on)
_GEN_KEYS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "max_gen_toks": "max_new_tokens",
             "max_new_tokens": "max_new_tokens", "until": "stop", "do_sample": "do_sample"}


def generation_options(gen_kwargs: str | Sequence[str] | None) -> dict[str, Any]:
    """`--gen_kwargs` -> the run options it sets (temperature, top_p, top_k, max_new_tokens, stop).
    `do_sample=false` is greedy (temperature 0); `do_sample=true` without a temperature samples at 1.0,
    as transformers does."""
    args = parse_key_values(gen_kwargs, "--gen_kwargs")
    unknown = sorted(set(args) - set(_GEN_KEYS))
    if unknown:
        raise UserError(f"--gen_kwargs: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_GEN_KEYS)}")
    options = {_GEN_KEYS[k]: v for k, v in args.items()}
    if "stop" in options:
        stop = options["stop"]
        options["stop"] = [stop] if isinstance(stop, str) else list(stop) if isinstance(stop, (list, tuple)) else stop
    do_sample = options.pop("do_sample", None)
    if do_sample is False:
        if options.get("temperature", 0) != 0:
            raise UserError("--gen_kwargs: do_sample=false with a temperature above 0 contradicts itself")
        options["temperature"] = 0.0
    elif do_sample is True:
        if options.get("temperature") == 0:
            raise UserError("--gen_kwargs: do_sample=true with temperature=0 contradicts itself")
        options.setdefault("temperature", 1.0)
    if isinstance(options.get("temperature"), int):
        options["temperature"] = float(options["temperature"])
    return options


def batch_size(text: str) -> int | str:
    """`--batch-size 8`, `auto`, or lm-eval's `auto:N` (evalboard finds the size once per task: auto)."""
    if text == "auto" or text.startswith("auto:"):
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"must be a positive whole number or auto, not {text!r}") from None
    if value <= 0:
        raise ValueError(f"must be a positive whole number or auto, not {text!r}")
    return value


def lm_eval_bool(text: str) -> bool:
    """A boolean flag's value as lm-eval reads it (`--fewshot_as_multiturn false`)."""
    return text.lower() in ("true", "1", "yes")


def check_fewshot_as_multiturn(value: bool | None, apply_chat_template: bool) -> None:
    """lm-eval's `--fewshot_as_multiturn` (implied by its --apply_chat_template): evalboard gives the
    few-shot examples under a chat template as user/assistant turns, always, and without a template
    there are no turns; so the flag is accepted where it says that, and a one-line error elsewhere."""
    if value is True and not apply_chat_template:
        raise UserError("--fewshot_as_multiturn needs --apply-chat-template (as in lm-eval): without a chat "
                        "template there are no turns to put the examples in")
    if value is False and apply_chat_template:
        raise UserError("--fewshot_as_multiturn false is not available: under --apply-chat-template evalboard "
                        "always gives the few-shot examples as user/assistant turns (lm-eval's default)")


def with_trust_remote_code(spec: str) -> str:
    """lm-eval's `--trust_remote_code`: `trust_remote_code=True` among an hf model's arguments (as
    lm-eval adds it to --model_args); other models have no Hub code to trust."""
    if not spec.startswith("hf:") or "trust_remote_code=" in spec:
        return spec
    return f"{spec},trust_remote_code=True"


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def set_verbosity(level: str | None) -> None:
    """lm-eval's `--verbosity LEVEL`: the level of evalboard's own log messages (its warnings show
    by default; DEBUG adds what each step decided)."""
    if level is None:
        return
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("evalboard").setLevel(level)
