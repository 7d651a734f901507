"""`vllm:` passes vLLM's parallelism and capacity options through to `vllm serve`, validated
first (one line for a bad value), recorded in the run record and kept out of the fingerprint.
What a CPU can check: the flags, the checks, and (tests/test_vllm.py) a real CPU server started
with them answering with the same fingerprint as one started without."""

from __future__ import annotations

import pytest
from evalboard.errors import UserError
from evalboard.models.vllm_parallelism import VLLMParallelism
from evalboard.models.vllm_process import ServerConfig, VLLMInstall


def test_the_options_become_vllm_serve_flags() -> None:
    parallel = VLLMParallelism.from_options({"tensor_parallel_size": "4", "pipeline_parallel_size": "2",
                                             "data_parallel_size": "2", "gpu_memory_utilization": "0.85",
                                             "max_num_batched_tokens": "8192", "enable_prefix_caching": "false",
                                             "max_num_seqs": "64", "dtype": "bfloat16"}, "vllm:m")
    assert parallel.gpus_per_server() == 16
    assert parallel.given()["gpu_memory_utilization"] == 0.85 and parallel.max_num_seqs == 64
    gpu = VLLMInstall(python="python", distribution="vllm", version="0.11")
    command = ServerConfig(install=gpu, model="m", served_name="m", max_num_seqs=parallel.max_num_seqs,
                           engine_flags=parallel.flags()).command(8000)
    text = " ".join(command)
    for flag in ("--tensor-parallel-size 4", "--pipeline-parallel-size 2", "--data-parallel-size 2",
                 "--gpu-memory-utilization 0.85", "--max-num-batched-tokens 8192", "--no-enable-prefix-caching",
                 "--max-num-seqs 64"):
        assert flag in text
    assert text.count("--max-num-seqs") == 1
    assert VLLMParallelism.from_options({}, "vllm:m").flags() == []


@pytest.mark.parametrize("options,fragment", [
    ({"tensor_parallel_size": "0"}, "tensor_parallel_size='0'"),
    ({"data_parallel_size": "2.5"}, "data_parallel_size='2.5'"),
    ({"gpu_memory_utilization": "1.5"}, "less than or equal to 1"),
    ({"enable_prefix_caching": "maybe"}, "enable_prefix_caching='maybe'"),
])
def test_a_bad_value_is_one_line_before_any_server_starts(options: dict[str, str], fragment: str) -> None:
    with pytest.raises(UserError) as caught:
        VLLMParallelism.from_options(options, "vllm:m")
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_the_cpu_build_refuses_sizes_above_one() -> None:
    VLLMParallelism.from_options({"tensor_parallel_size": "1", "data_parallel_size": "1"}, "vllm:m").check_for_cpu("vllm:m")
    with pytest.raises(UserError, match="need the GPU build of vLLM"):
        VLLMParallelism.from_options({"tensor_parallel_size": "2"}, "vllm:m").check_for_cpu("vllm:m")
