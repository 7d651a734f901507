"""A vLLM server the harness starts and stops itself:
`vllm:PATH_OR_HUB_ID[,adapter=LORA_DIR][,python=...][,dtype=...][,max_model_len=N]...`

The server runs in its own interpreter (`python=`, $EVALBOARD_VLLM_PYTHON, the repo's `.venv-vllm`
from scripts/install_vllm.sh, or this Python), on a free port of 127.0.0.1; everything else is the
`openai-compatible:` adapter talking to it. With `adapter=`, the server loads the LoRA adapter
(`--enable-lora --lora-modules`) and every request names the adapter, so the answers are
base+adapter. Lifecycle details: harness/vllm_process.py and docs/vllm.md.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from evalboard.errors import UserError
from evalboard.fingerprint import directory_hash
from evalboard.models.adapters.base import AdapterSettings, ModelAdapter, ModelSpec, register_adapter
from evalboard.models.adapters.openai_compatible import _OWN_OPTIONS, OpenAICompatibleAdapter
from evalboard.models.remote import RemotePolicy
from evalboard.models.spec_options import number_option
from evalboard.models.vllm_parallelism import VLLMParallelism
from evalboard.models.vllm_process import ServerConfig, VLLMServer, probe_install, resolve_python

# On CPU the KV cache is plain RAM sized up front: cap the context unless the user asks for more.
CPU_DEFAULT_MAX_MODEL_LEN = 4096
_SERVER_OPTIONS = ("adapter", "python", "dtype", "max_model_len", "kv_cache_gib",
                   "startup_timeout", "server_args", "log_dir", "revision", *VLLMParallelism.option_names())


def _config_max_len(model_dir: Path) -> int | None:
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    value = config.get("max_position_embeddings") or config.get("n_positions")
    return int(value) if isinstance(value, int) and value > 0 else None


def _lora_rank(adapter: Path) -> int:
    try:
        config = json.loads((adapter / "adapter_config.json").read_text())
    except (OSError, ValueError):
        raise UserError(f"adapter path {adapter} is not a PEFT adapter folder "
                        "(no readable adapter_config.json)") from None
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise UserError(f"adapter {adapter} is a {config.get('peft_type')} adapter; vLLM serves LoRA only")
    ranks = [int(config.get("r") or 8), *map(int, (config.get("rank_pattern") or {}).values())]
    return max(ranks)


@register_adapter
class VLLMServerAdapter(OpenAICompatibleAdapter):
    schemes = ("vllm",)

    def __init__(self, spec: ModelSpec, settings: AdapterSettings) -> None:
        ModelAdapter.__init__(self, spec, settings)
        options = spec.options
        known = {*_SERVER_OPTIONS, *_OWN_OPTIONS, *RemotePolicy.option_names()}
        unknown = sorted(set(options) - known)
        if unknown:  # before spending half a minute on a server start
            raise UserError(f"unknown model option(s) {', '.join(unknown)} in {spec.raw}; "
                            f"known: {', '.join(sorted(known))}")
        model_path = Path(spec.target).expanduser()
        self._local = model_path.is_dir()
        if not self._local and spec.target.startswith((".", "/", "~")):
            raise UserError(f"model path {spec.target} does not exist; give a model folder or a Hub id")
        model = str(model_path.resolve()) if self._local else spec.target
        self._revision = options.get("revision")
        self._adapter_path = Path(options["adapter"]).expanduser().resolve() if "adapter" in options else None

        self.parallelism = VLLMParallelism.from_options(options, spec.raw)
        install = probe_install(resolve_python(options.get("python")))
        if install.on_cpu:
            self.parallelism.check_for_cpu(spec.raw)
        dtype = options.get("dtype", settings.dtype)
        max_len = number_option(options, "max_model_len", int) or settings.max_length
        if max_len is None and install.on_cpu:
            max_len = min(CPU_DEFAULT_MAX_MODEL_LEN, (_config_max_len(model_path) if self._local else None)
                          or CPU_DEFAULT_MAX_MODEL_LEN)
        base_name = model_path.name if self._local else spec.target.replace("/", "--")
        lora = None
        if self._adapter_path is not None:
            lora = (f"{base_name}+{self._adapter_path.name}", self._adapter_path, _lora_rank(self._adapter_path))
        extra = shlex.split(options.get("server_args", ""))
        if self._revision:
            extra += ["--revision", self._revision]
        self.server_config = ServerConfig(
            install=install, model=model, served_name=base_name, dtype=dtype, max_model_len=max_len,
            kv_cache_gib=number_option(options, "kv_cache_gib", float, 2.0),
            max_num_seqs=self.parallelism.max_num_seqs, engine_flags=self.parallelism.flags(),
            lora=lora, extra_args=extra,
            startup_timeout_s=number_option(options, "startup_timeout", float, 600.0),
            log_dir=Path(options["log_dir"]) if "log_dir" in options else None,
        )
        self.server = VLLMServer(self.server_config).start()
        try:
            connect_options = {k: v for k, v in options.items() if k not in _SERVER_OPTIONS}
            connect_options.setdefault("tokenizer", model)  # the base model's tokenizer, as vLLM's
            # a local server is slow, not flaky: a retried timeout only doubles its load
            connect_options.setdefault("timeout", "600")
            served = lora[0] if lora else base_name
            self._connect([self.server.base_url], served, connect_options)
        except BaseException:
            self.server.stop()
            raise

    # -- identity: the weights and the adapter's content, not paths or ports

    def fingerprint(self) -> dict[str, Any]:
        base = super().fingerprint()
        for key in ("served", "model"):  # names and paths the harness chose
            base.pop(key, None)
        if self._local:
            weights = directory_hash(Path(self.server_config.model), only_weights=True)
        else:
            weights = f"{self.spec.target}@{self._revision or 'unversioned'}"
        install = self.server_config.install
        return {
            **base,
            "adapter_kind": "vllm",
            "weights": weights,
            "lora_adapter": directory_hash(self._adapter_path) if self._adapter_path else None,
            "dtype": self._effective_dtype(),
            "engine": f"{install.distribution}=={install.version}",
        }

    def _effective_dtype(self) -> str:
        command = self.server_config.command(0)
        return command[command.index("--dtype") + 1]

    def describe(self) -> dict[str, Any]:
        install = self.server_config.install
        return {
            **super().describe(),
            "engine": f"{install.distribution}=={install.version}",
            "server_python": install.python,
            "server_log": str(self.server.log_path),
            "server_start_s": self.server.start_seconds,
            "dtype": self._effective_dtype(),
            "max_model_len": self.max_length,
            "lora_adapter": str(self._adapter_path) if self._adapter_path else None,
            "parallelism": self.parallelism.given(),  # how it was served; not in the fingerprint
        }

    def close(self) -> None:
        self.server.stop()

    def __enter__(self) -> VLLMServerAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
