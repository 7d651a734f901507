"""Local Hugging Face models: `hf:PATH_OR_ID[,adapter=PATH][,dtype=...][,device=...][,revision=...]
[,max_length=N][,batch_tokens=N]`.

Loglikelihoods are computed exactly as lm-eval's `hf` backend computes them (same token boundary
between context and continuation, same truncation), so numbers are comparable; requests whose
model input is identical share one forward pass (e.g. single-token answers to one question).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from evalboard.errors import UserError
from evalboard.fingerprint import directory_hash
from evalboard.models.adapters.base import (
    AdapterSettings,
    Capabilities,
    ModelAdapter,
    ModelSpec,
    ResultCallback,
    register_adapter,
)
from evalboard.models.generation import GenerationJob, GenerationResult, SharedPrefixGenerator, supports
from evalboard.models.memory import release_free_memory
from evalboard.models.prefix_scoring import PrefixScorer
from evalboard.models.preloaded import loaded_model
from evalboard.models.rolling import WindowSums, rolling_windows
from evalboard.models.spec_options import number_option
from evalboard.models.tokenization import (
    encode,
    encode_pair,
    model_input_text,
    prefix_token,
    render_chat,
    tokenizer_identity,
)
from evalboard.requests import (
    GenerateRequest,
    LoglikelihoodRequest,
    Prompt,
    Response,
    RollingLoglikelihoodRequest,
    Usage,
)

DEFAULT_MAX_LENGTH = 2048
# Tokens whose keys/values the generation rows hold at once (the continuous batcher: the sum of
# the rows' lengths, a shared prefix counted once; the padded fallback: rows x (prompt + new
# tokens) of one generate() call, whose cache and activations cost ~100 MiB per 1,000-token row on
# SmolLM2-135M; the batcher's keys/values cost 45 KiB a token there). It keeps a run's peak memory
# within about 1.5x the model's own. Override with `hf:...,batch_tokens=N`.
DEFAULT_GENERATION_BATCH_TOKENS = 4096


def _resolve_location(target: str) -> tuple[str, str | None]:
    """(path or hub id, gguf file name or None)."""
    from evalboard.models.default_model import PACKAGED_MODELS, packaged_model_dir

    path = Path(target).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), path.name
    if path.is_dir():
        if (path / "config.json").is_file():
            return str(path), None
        ggufs = sorted(path.glob("*.gguf"))
        if ggufs:
            return str(path), ggufs[0].name
        if (path / "adapter_config.json").is_file():
            raise UserError(f"{path} is a PEFT adapter, not a model; give its base model with the adapter "
                            f"on top: hf:{_adapter_base(path)},adapter={path}")
        raise UserError(f"model folder {path} has neither config.json nor a .gguf file")
    if target.lower() in PACKAGED_MODELS:
        return str(packaged_model_dir(target.lower())), None
    if target.startswith((".", "/", "~")) or target.count("/") > 1:
        raise UserError(f"model path {target} does not exist; give a model folder or a Hub id")
    return target, None  # a Hub id


def _adapter_base(adapter: Path) -> str:
    """The base model an adapter folder names (peft's `base_model_name_or_path`), or BASE."""
    import json

    try:
        base = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError):
        base = None
    return str(base) if isinstance(base, str) and base else "BASE"


@register_adapter
class HFAdapter(ModelAdapter):
    schemes = ("hf",)

    def __init__(self, spec: ModelSpec, settings: AdapterSettings) -> None:
        super().__init__(spec, settings)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        options = spec.options
        unknown = set(options) - {"adapter", "dtype", "device", "revision", "max_length", "trust_remote_code",
                                  "batch_tokens"}
        if unknown:
            raise UserError(f"unknown hf: model option(s) {', '.join(sorted(unknown))} in {spec.raw}")
        max_length = number_option(options, "max_length", int, positive=True)
        batch_tokens = number_option(options, "batch_tokens", int, DEFAULT_GENERATION_BATCH_TOKENS, positive=True)
        self._loaded = loaded_model(spec.target)
        self._location, self._gguf = (spec.target, None) if self._loaded else _resolve_location(spec.target)
        self._revision = options.get("revision")
        self._adapter_path = Path(options["adapter"]).expanduser() if "adapter" in options else None
        if self._adapter_path is not None and not (self._adapter_path / "adapter_config.json").is_file():
            raise UserError(f"adapter path {self._adapter_path} is not a PEFT adapter folder (no adapter_config.json)")

        device = options.get("device", settings.device)
        if self._loaded is not None and device == "auto":
            device = str(self._loaded.model.device)  # a loaded model stays where its caller put it
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else _usable_device(device)
        dtype_name = options.get("dtype", settings.dtype)
        if self._loaded is not None and dtype_name == "auto":
            dtype_name = str(self._loaded.model.dtype).removeprefix("torch.")
        if dtype_name == "auto":  # float32 on CPU: bf16 copies of small models are different models
            dtype_name = "float32" if self.device == "cpu" else "bfloat16"
        if not hasattr(torch, dtype_name):
            raise UserError(f"unknown dtype {dtype_name!r}; use float32, bfloat16 or float16")
        self.dtype_name = dtype_name

        load_kwargs: dict[str, Any] = {"revision": self._revision} if self._revision else {}
        if options.get("trust_remote_code", "false").lower() in ("true", "1", "yes"):
            load_kwargs["trust_remote_code"] = True  # the Hub repository's own modelling code may run
        if self._gguf:
            load_kwargs["gguf_file"] = self._gguf
        try:
            if self._loaded is not None:
                self.tokenizer, model = self._loaded.tokenizer, self._loaded.model.to(getattr(torch, dtype_name))
            else:
                self.tokenizer = AutoTokenizer.from_pretrained(self._location, **load_kwargs)
                model = AutoModelForCausalLM.from_pretrained(
                    self._location, dtype=getattr(torch, dtype_name), **load_kwargs
                )
        except OSError as exc:
            raise UserError(
                f"could not load model {spec.target!r}: not a local folder and not reachable on the "
                f"Hugging Face Hub ({str(exc).splitlines()[0][:160]})"
            ) from exc
        except ValueError as exc:
            if "trust_remote_code" not in str(exc):
                raise
            raise UserError(
                f"model {spec.target!r} needs its own modelling code to load; if you trust it, add "
                "trust_remote_code=True to the spec (or pass --trust_remote_code)"
            ) from None
        if self._adapter_path is not None:
            model = self._attach_adapter(model)
        self.model = model.to(self.device).eval()
        self.max_length = max_length or settings.max_length or self._model_max_length()
        self._auto_batch = settings.batch_size == "auto"  # found before each call (one task's requests)
        self.batch_size = 1 if isinstance(settings.batch_size, str) else max(1, settings.batch_size)
        self.auto_batch_sizes: list[int] = []
        self.batch_tokens = batch_tokens
        self._pad_id = self.tokenizer.pad_token_id
        if self._pad_id is None:
            self._pad_id = self.tokenizer.eos_token_id or 0
        self.scorer = PrefixScorer(self.model, self.max_length, self.batch_size, self._pad_id)
        self.generator = None
        if supports(self.model) and _plain_greedy(self.model.generation_config):
            self.generator = SharedPrefixGenerator(
                self.model, self.batch_size, self.batch_tokens, self._end_tokens(),
                lambda tokens: str(self.tokenizer.decode(tokens, skip_special_tokens=True)))

    # --- loading -------------------------------------------------------------------------

    def _attach_adapter(self, model: Any) -> Any:
        from peft import PeftModel

        try:  # not merged: the base weights stay as they are, the adapter is applied on top
            return PeftModel.from_pretrained(model, str(self._adapter_path))
        except Exception as exc:  # noqa: BLE001 - peft and safetensors raise many kinds; all mean "unusable"
            raise UserError(
                f"adapter {self._adapter_path} could not be applied to base model {self.spec.target}: "
                f"{_loading_problem(exc)}; check that it was saved with peft's save_pretrained for this base"
            ) from None

    def _end_tokens(self) -> set[int]:
        """The tokens model.generate stops at (its generation config's, else the tokenizer's)."""
        ids = self.model.generation_config.eos_token_id
        if ids is None:
            ids = self.tokenizer.eos_token_id
        return set(ids) if isinstance(ids, list) else ({ids} if ids is not None else set())

    def _model_max_length(self) -> int:
        config = self.model.config
        for attribute in ("max_position_embeddings", "n_positions", "seq_length"):
            value = getattr(config, attribute, None)
            if isinstance(value, int) and value > 0:
                return min(value, 1 << 16)
        return DEFAULT_MAX_LENGTH

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(loglikelihood=True, generate=True, chat=self.tokenizer.chat_template is not None)

    def fingerprint(self) -> dict[str, Any]:
        location = Path(self._location)
        if self._loaded is not None:
            weights = self._loaded.weights_hash
        elif location.is_dir():
            weights = directory_hash(location, only_weights=True)
        else:
            weights = getattr(self.model.config, "_commit_hash", None) or self._revision or "unversioned"
        return {
            "adapter_kind": "hf",
            "weights": weights,
            "lora_adapter": directory_hash(self._adapter_path) if self._adapter_path else None,
            "dtype": self.dtype_name,
            "max_length": self.max_length,
            **tokenizer_identity(self.tokenizer),
        }

    def describe(self) -> dict[str, Any]:
        parameters = sum(p.numel() for p in self.model.parameters())
        return {
            "open_weights": True,
            "parameters": int(parameters),
            "device": self.device,
            "dtype": self.dtype_name,
            "lora_adapter": str(self._adapter_path) if self._adapter_path else None,
        }

    def usage_summary(self) -> dict[str, Any]:
        stats = self.scorer.stats
        summary = {
            "forward_passes": stats.forward_passes,
            "tokens_forwarded": stats.forwarded_tokens,
            "unique_prefix_tokens": stats.unique_tokens,
            "token_efficiency": round(stats.efficiency, 4),
            **({"auto_batch_sizes": list(self.auto_batch_sizes)} if self._auto_batch else {}),
        }
        if self.generator is not None and self.generator.stats.unique_prompt_tokens:
            summary.update(self.generator.stats.summary())
        return summary

    def _fit_batch(self, widths: Sequence[int]) -> None:
        """--batch-size auto: the largest batch of the call's longest sequence that fits."""
        if not self._auto_batch or not widths:
            return
        from evalboard.models.batch_probe import largest_fitting_batch

        self.batch_size = largest_fitting_batch(self.model, min(max(widths), self.max_length), self.device,
                                                len(widths))
        self.scorer.batch = self.batch_size
        if self.generator is not None:
            self.generator.rows = self.batch_size
        self.auto_batch_sizes.append(self.batch_size)

    # --- tokenisation (shared with openai-compatible:, mirrors lm-eval's HFLM) -----------

    def render(self, prompt: Prompt) -> str:
        return render_chat(self.tokenizer, prompt)

    def model_input(self, prompt: Prompt) -> str:
        return model_input_text(self.tokenizer, prompt)

    def encode(self, text: str) -> list[int]:
        return encode(self.tokenizer, text)

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        return encode_pair(self.tokenizer, context, continuation)

    # --- loglikelihood -------------------------------------------------------------------

    def _score_pairs(self, pairs: Sequence[tuple[list[int], list[int]]], on_result: ResultCallback) -> None:
        def deliver(index: int, logprob: float, greedy: bool, seconds: float) -> None:
            tokens = len(pairs[index][0]) + len(pairs[index][1])
            on_result(index, Response(logprob=logprob, is_greedy=greedy,
                                      usage=Usage(input_tokens=tokens, latency_s=seconds)))

        self._fit_batch([len(context) + len(continuation) for context, continuation in pairs])
        self.scorer.score(pairs, deliver)

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest], on_result: ResultCallback) -> None:
        pairs = [self.encode_pair(self.render(r.context), r.continuation) for r in requests]
        self._score_pairs(pairs, on_result)

    def loglikelihood_rolling(
        self, requests: Sequence[RollingLoglikelihoodRequest], on_result: ResultCallback
    ) -> None:
        """Whole-text loglikelihood in lm-eval's rolling windows of max_length tokens (its
        HFLM.loglikelihood_rolling: the text's tokens as tok_encode gives them, BOS included
        where the tokenizer adds it, and the prefix token before the first)."""
        pairs: list[tuple[list[int], list[int]]] = []
        owners: list[int] = []
        for index, request in enumerate(requests):
            windows = rolling_windows(self.encode(request.text), prefix_token(self.tokenizer), self.max_length)
            pairs += windows
            owners += [index] * len(windows)
        sums = WindowSums(owners, len(requests), on_result)
        sums.deliver_empty()
        self._score_pairs(pairs, sums)

    # --- generation ----------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerateRequest], on_result: ResultCallback) -> None:
        """Greedy requests through the shared-prefix continuous batcher where the model allows
        (models/generation.py), else in padded batches of model.generate; sampled requests one at
        a time, each with its own seed."""
        import torch

        prepared = [(i, self.encode(self.render(r.context)), r) for i, r in enumerate(requests)]
        greedy = sorted((p for p in prepared if p[2].params.greedy), key=lambda p: (-len(p[1]), p[0]))
        sampled = [p for p in prepared if not p[2].params.greedy]
        self._fit_batch([self._row_tokens(p) for p in greedy])
        # a prompt of no tokens (a tokenizer without BOS, an empty context) has no row of its own
        # in the batcher; the padded batches give it pad tokens to start from, as lm-eval does
        if self.generator is not None and greedy and all(tokens for _, tokens, _ in greedy):
            self._generate_continuously(greedy, on_result)
        else:
            for batch in self._generation_batches(greedy):
                self._generate_batch(batch, on_result)
                release_free_memory()
        for item in sampled:  # one at a time with its own seed: reproducible whatever the batch
            seed = item[2].params.seed * 100_003 + item[2].sample
            torch.manual_seed(seed)
            self._generate_batch([item], on_result)

    def _generate_continuously(self, items: list[tuple[int, list[int], GenerateRequest]],
                               on_result: ResultCallback) -> None:
        assert self.generator is not None
        by_index = {index: request for index, _, request in items}
        jobs = [GenerationJob(index, tuple(tokens[-(self.max_length - r.params.max_new_tokens):]),
                              r.params.max_new_tokens, r.params.stop)
                for index, tokens, r in sorted(items, key=lambda item: item[0])]

        def deliver(result: GenerationResult) -> None:
            request = by_index[result.index]
            on_result(result.index, self._response(result.tokens, request, result.prompt_tokens, result.seconds))

        self.generator.run(jobs, deliver)
        release_free_memory()

    def _response(self, new_tokens: list[int], request: GenerateRequest, prompt_tokens: int,
                  seconds: float) -> Response:
        """The answer text as today: cut at the end token, special tokens dropped, cut at the
        earliest stop sequence."""
        if self.tokenizer.eos_token_id in new_tokens:
            new_tokens = new_tokens[: new_tokens.index(self.tokenizer.eos_token_id)]
        text = str(self.tokenizer.decode(new_tokens, skip_special_tokens=True))
        text = truncate_at_stop(text, request.params.stop)
        usage = Usage(input_tokens=prompt_tokens, output_tokens=len(new_tokens), latency_s=seconds)
        return Response(text=text, usage=usage)

    def _generation_batches(self, longest_first: list[tuple[int, list[int], GenerateRequest]]) -> Iterator[list]:
        """Up to batch_size requests per generate() call, fewer when rows x (prompt + new tokens)
        would exceed batch_tokens: that product sizes the call's cache and activations."""
        batch: list[tuple[int, list[int], GenerateRequest]] = []
        for item in longest_first:
            if batch and (len(batch) == self.batch_size
                          or (len(batch) + 1) * self._row_tokens(batch[0]) > self.batch_tokens):
                yield batch
                batch = []
            batch.append(item)
        if batch:
            yield batch

    def _row_tokens(self, item: tuple[int, list[int], GenerateRequest]) -> int:
        new_tokens = item[2].params.max_new_tokens
        return min(len(item[1]), self.max_length - new_tokens) + new_tokens

    def _generate_batch(self, batch: list[tuple[int, list[int], GenerateRequest]], on_result: ResultCallback) -> None:
        import torch

        params = batch[0][2].params
        by_params: dict[Any, list] = {}
        for item in batch:
            by_params.setdefault(item[2].params, []).append(item)
        if len(by_params) > 1:  # different settings cannot share one generate() call
            for group in by_params.values():
                self._generate_batch(group, on_result)
            return
        limit = self.max_length - params.max_new_tokens
        inputs = [tokens[-limit:] for _, tokens, _ in batch]
        width = max(1, *(len(tokens) for tokens in inputs))  # a batch of empty prompts starts from a (masked) pad
        ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, tokens in enumerate(inputs):  # left padding for generation
            ids[i, width - len(tokens) :] = torch.tensor(tokens, dtype=torch.long)
            mask[i, width - len(tokens) :] = 1
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "pad_token_id": self._pad_id,
            "attention_mask": mask.to(self.device),
        }
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        if params.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p,
                          top_k=params.top_k or None)
        began = time.perf_counter()
        with torch.inference_mode():
            output = self.model.generate(ids.to(self.device), **kwargs)
        elapsed = time.perf_counter() - began
        for i, (index, _tokens, request) in enumerate(batch):
            on_result(index, self._response(output[i, width:].tolist(), request, len(inputs[i]), elapsed))

    def close(self) -> None:
        self.model = None


def _loading_problem(exc: Exception) -> str:
    """One informative line from a loading error: torch's state-dict errors put the useful part
    ("size mismatch for ...") on a later line than their header."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    specific = [line for line in lines if line.startswith(("size mismatch", "Missing key", "Unexpected key"))]
    chosen = specific[0] if specific else (lines[0] if lines else type(exc).__name__)
    return f"{type(exc).__name__}: {chosen[:240]}"


def _plain_greedy(config: Any) -> bool:
    """Whether model.generate's greedy search would pick the plain argmax: no logits processor
    from the model's generation config (repetition penalty, banned words, ...) applies."""
    neutral = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "min_length": 0, "min_new_tokens": 0,
               "encoder_repetition_penalty": 1.0}
    absent = ("bad_words_ids", "suppress_tokens", "begin_suppress_tokens", "sequence_bias", "forced_bos_token_id",
              "forced_eos_token_id", "forced_decoder_ids")
    return (all(getattr(config, name, None) in (None, value) for name, value in neutral.items())
            and all(getattr(config, name, None) in (None, []) for name in absent))


def truncate_at_stop(text: str, stops: Sequence[str]) -> str:
    """Cut the text at the earliest stop sequence (it is not part of the answer)."""
    cut = len(text)
    for stop in stops:
        if stop and (position := text.find(stop)) != -1:
            cut = min(cut, position)
    return text[:cut]


def _usable_device(name: str) -> str:
    """A device this torch can use, checked before any weights are loaded (torch's own failure
    comes from deep inside `.to()` as a multi-line traceback)."""
    import torch

    fix = "use --device cpu or auto (or device= in the model spec)"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", built without CUDA")
            raise UserError(f"device {name!r} asked for, but this machine has no usable CUDA GPU ({build}); {fix}")
        if device.index is not None and device.index >= count:
            raise UserError(f"device {name!r} asked for, but there are only {count} CUDA GPU(s) (cuda:0 to "
                            f"cuda:{count - 1}); {fix}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {name!r} asked for, but MPS is not available here; {fix}")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"device {name!r} is not supported; use auto, cpu, cuda, cuda:N or mps")
    return name
