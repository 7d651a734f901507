"""lm-eval command lines run as `evalboard run`: the ones in lm-eval's own README (its "Basic
Usage", "Advanced Usage Tips", "Saving & Caching Results" and "Visualizing Results" sections),
pasted as they are and changed only where this machine or evalboard needs it, each change named
in `ON_THIS_MACHINE` (a tiny local model for the Hub model, the CPU for `cuda:0`, two items).
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

import pytest
from evalboard.cli import main
from evalboard.cli.lm_eval_flags import model_spec
from evalboard.records.store import list_runs

# lm-eval's README, `lm_eval` dropped from the front (the lines are shell words)
README = {
    "hf": "--model hf --model_args pretrained=EleutherAI/gpt-j-6B --tasks hellaswag --device cuda:0 --batch_size 8",
    "revision_dtype": '--model hf --model_args pretrained=EleutherAI/pythia-160m,revision=step100000,dtype="float" '
                      "--tasks lambada_openai,hellaswag --device cuda:0 --batch_size 8",
    "auto_batch": '--model hf --model_args pretrained=EleutherAI/pythia-160m,revision=step100000,dtype="float" '
                  "--tasks lambada_openai,hellaswag --device cuda:0 --batch_size auto:4",
    "peft": "--model hf --model_args pretrained=EleutherAI/gpt-j-6b,parallelize=True,load_in_4bit=True,"
            "peft=nomic-ai/gpt4all-j-lora --tasks openbookqa,arc_easy,winogrande,hellaswag,arc_challenge,piqa,boolq "
            "--device cuda:0",
    "zeno": "--model hf --model_args pretrained=EleutherAI/gpt-j-6B --tasks hellaswag --device cuda:0 --batch_size 8 "
            "--log_samples --output_path output/gpt-j-6B",
    "wandb": "--model hf --model_args pretrained=microsoft/phi-2,trust_remote_code=True "
             "--tasks hellaswag,mmlu_abstract_algebra --device cuda:0 --batch_size 8 --output_path output/phi-2 "
             "--limit 10 --wandb_args project=lm-eval-harness-integration --log_samples",
}
HUB_MODELS = ("EleutherAI/gpt-j-6B", "EleutherAI/gpt-j-6b", "EleutherAI/pythia-160m", "microsoft/phi-2")
ON_THIS_MACHINE = {
    "cuda:0": "cpu",  # no GPU here
    "revision=step100000,": "",  # a revision of a Hub repository; the local model has none
    "lambada_openai,": "",  # not an evalboard task
    "parallelize=True,load_in_4bit=True,": "",  # multi-GPU placement and bitsandbytes: see the test below
    "--wandb_args project=lm-eval-harness-integration": "",  # no Weights & Biases
    "--limit 10": "",  # two items per task, below
}


def _pasted(line: str, model: Path, adapter: Path) -> list[str]:
    for hub in HUB_MODELS:
        line = line.replace(f"pretrained={hub}", f"pretrained={model}")
    line = line.replace("peft=nomic-ai/gpt4all-j-lora", f"peft={adapter}")
    for text, replacement in ON_THIS_MACHINE.items():
        line = line.replace(text, replacement)
    return ["run", *shlex.split(line), "--limit", "2"]


@pytest.mark.parametrize("name", sorted(README))
def test_lm_evals_readme_command_lines_run(name: str, tiny_model: Path, tiny_adapter: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    argv = _pasted(README[name], tiny_model, tiny_adapter)
    assert main(argv) == 0, capsys.readouterr().err
    output = Path(argv[argv.index("--output_path") + 1]) if "--output_path" in argv else Path("results")
    (record,) = list_runs(output)
    wanted = shlex.split(README[name])[shlex.split(README[name]).index("--tasks") + 1].split(",")
    assert sorted(record.tasks) == sorted(t for t in wanted if t != "lambada_openai")
    assert all(task.n_items == 2 for task in record.tasks.values())
    assert record.model.info["device"] == "cpu" and record.model.fingerprint_parts["dtype"] == "float32"
    if name == "peft":
        assert record.model.info["lora_adapter"] == str(tiny_adapter)
    if name == "auto_batch":  # the largest batch that fits, found for each task and recorded
        assert record.settings.batch_size == "auto"
        # 2 items x 4 endings: all 8 requests fit in one batch of the tiny model
        assert record.settings.auto_batch_size == {"hellaswag": 8}
    elif "--batch_size 8" in README[name]:
        assert record.settings.batch_size == 8
    assert "acc" in capsys.readouterr().out


def test_what_evalboard_cannot_do_is_one_line(tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """lm-eval's multi-GPU placement and 4-bit loading (the README's PEFT line as it stands)."""
    code = main(["run", "--model", "hf", "--model_args", f"pretrained={tiny_model},parallelize=True,load_in_4bit=True",
                 "--tasks", "arc_easy", "--limit", "1"])
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "unknown hf: model option(s) load_in_4bit, parallelize" in line


def test_the_readme_server_and_api_lines_map_to_specs() -> None:
    """`--model local-completions` (the README's line), openai and anthropic: the specs they become."""
    assert model_spec("local-completions", ["model=facebook/opt-125m,base_url=http://10.0.0.5:8000/v1/completions,"
                                            "num_concurrent=1,max_retries=3,tokenized_requests=False,batch_size=16"]) \
        == "openai-compatible:http://10.0.0.5:8000/v1#facebook/opt-125m,concurrency=1,max_retries=3"
    assert model_spec("openai-completions", ["model=davinci-002"]) == "openai:davinci-002"
    assert model_spec("anthropic-chat", ["model=claude-3-haiku"]) == "anthropic:claude-3-haiku"
    assert model_spec("vllm", ["pretrained=/m,tensor_parallel_size=2,dtype=auto"]) == \
        "vllm:/m,tensor_parallel_size=2,dtype=auto"


def test_gen_kwargs_override_the_tasks_generation_and_its_fingerprint(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    common = ["run", "--model", "chance:0", "--tasks", "gsm8k_cot", "--limit", "1", "--output", str(tmp_path)]
    assert main(common) == 0
    assert main([*common, "--gen_kwargs", "temperature=0.7,top_p=0.9,top_k=40,max_gen_toks=16,until=['Q:','\\n\\n']",
                 "--write_out"]) == 0
    default, tuned = sorted(list_runs(tmp_path), key=lambda r: r.created_at)
    generation = tuned.tasks["gsm8k_cot"].generation
    assert generation is not None
    assert (generation["temperature"], generation["top_p"], generation["top_k"]) == (0.7, 0.9, 40)
    assert (generation["max_new_tokens"], generation["stop"]) == (16, ["Q:", "\n\n"])
    assert (tuned.settings.top_p, tuned.settings.top_k, tuned.settings.stop) == (0.9, 40, ["Q:", "\n\n"])
    assert tuned.tasks["gsm8k_cot"].task_fingerprint != default.tasks["gsm8k_cot"].task_fingerprint
    (sample,) = tuned.load_samples("gsm8k_cot")
    assert sample.requests[0].params is not None and sample.requests[0].params["stop"] == ["Q:", "\n\n"]
    assert "== gsm8k_cot: first prompt" in capsys.readouterr().out  # --write_out


def test_a_generation_option_on_a_loglikelihood_task_is_a_warning(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert main(["run", "--model", "chance:0", "--tasks", "arc_easy", "--limit", "1", "--output", str(tmp_path),
                     "--gen_kwargs", "temperature=0.5", "--top-k", "3"]) == 0
    assert "warning: temperature, top_k have no effect on arc_easy: it does not generate text" in caplog.text


def test_lm_evals_short_flags_are_evalboards_where_it_takes_the_option() -> None:
    """Each short flag of lm-eval's own `run` parser names the same option here when evalboard takes
    that option (-t, -M, -a, -L, -f, -b, -o, -s, -w, -v), and evalboard has no short flag lm-eval lacks."""
    import argparse

    from evalboard.cli import build_parser
    from lm_eval._cli.run import Run

    lm_eval = argparse.ArgumentParser()
    Run(lm_eval.add_subparsers())
    lm_eval_run = next(a for a in lm_eval._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
    ours = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices["run"]
    theirs = {o: a for a in lm_eval_run._actions for o in a.option_strings}
    taken = []
    for action in lm_eval_run._actions:
        long, *shorts = sorted(action.option_strings, key=lambda o: not o.startswith("--"))
        if long == "--help" or long not in ours._option_string_actions:
            continue
        for short in shorts:
            assert ours._option_string_actions[short].dest == ours._option_string_actions[long].dest, short
            taken.append(short)
    assert sorted(taken) == sorted(["-t", "-M", "-a", "-L", "-f", "-b", "-o", "-s", "-w", "-v"])
    for short in (o for o in ours._option_string_actions if not o.startswith("--")):
        assert short in theirs or short == "-h", short


def test_lm_evals_instruct_flags(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """lm-eval's chat-model line (its task READMEs': `--apply_chat_template --fewshot_as_multiturn`)
    with its system instruction, code-execution consent and remote-code flags, in short forms."""
    monkeypatch.chdir(tmp_path)
    line = (f"--model hf --model_args pretrained={tiny_model} -t arc_easy -f 1 -L 2 -b 4 --apply_chat_template "
            "--fewshot_as_multiturn --system_instruction 'Answer briefly.' --confirm_run_unsafe_code "
            "--trust_remote_code --write_out -o out")
    assert main(["run", *shlex.split(line)]) == 0, capsys.readouterr().err
    (record,) = list_runs(Path("out"))
    settings = record.settings
    assert (settings.num_fewshot, settings.limit, settings.batch_size) == (1, 2, 4)
    assert settings.style.apply_chat_template and settings.style.system_prompt == "Answer briefly."
    assert settings.allow_code_execution and record.model.spec.endswith(",trust_remote_code=True")
    first = record.load_samples("arc_easy")[0]
    # --write_out prints the exact model input (the chat template's output), not the readable prompt
    assert first.model_input is not None and "Answer briefly." in first.model_input
    assert f"== arc_easy: first model input\n{first.model_input}\n== arc_easy: its target" in capsys.readouterr().out
    # --fewshot_as_multiturn says what evalboard does under a chat template; anything else is one line
    for words, says in ((["--fewshot_as_multiturn"], "needs --apply-chat-template"),
                        (["--apply_chat_template", "--fewshot_as_multiturn", "false"], "is not available")):
        assert main(["run", "--model", "chance:0", "-t", "arc_easy", "-L", "1", *words]) == 2
        (error,) = capsys.readouterr().err.strip().splitlines()
        assert says in error


def test_tasks_fewshot_and_a_fractional_limit_through_the_command_line(tmp_path: Path) -> None:
    """`--tasks a b --num_fewshot 0 --limit 0.01`: each task gets ceil(0.01 x its items), lm-eval's rounding."""
    import math

    from evalboard.taskdef.prepared import TaskOptions, prepare_task
    from evalboard.taskdef.registry import discover_tasks

    assert main(["run", "--model", "chance:0", "--tasks", "arc_easy", "hellaswag", "--num_fewshot", "0",
                 "--limit", "0.01", "--output_path", str(tmp_path)]) == 0
    (record,) = list_runs(tmp_path)
    assert list(record.tasks) == ["arc_easy", "hellaswag"] and record.settings.limit == 0.01
    specs = discover_tasks()
    for name, entry in record.tasks.items():
        n = len(prepare_task(specs[name], TaskOptions(num_fewshot=0)).docs)
        assert entry.num_fewshot == 0 and entry.n_items == math.ceil(0.01 * n) < n, name


def test_verbosity_sets_evalboards_log_level_and_a_wrong_level_is_one_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """lm-eval's `--verbosity DEBUG` (any case): evalboard's loggers at that level; `-v LOUD` exit 2."""
    import logging

    evalboard_logger = logging.getLogger("evalboard")
    before = evalboard_logger.level
    try:
        assert main(["run", "--model", "chance:0", "-t", "arc_easy", "-L", "1", "-v", "debug",
                     "-o", str(tmp_path)]) == 0
        assert evalboard_logger.getEffectiveLevel() == logging.DEBUG
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main(["run", "--model", "chance:0", "-t", "arc_easy", "--verbosity", "LOUD"])
        assert exit_info.value.code == 2
        (error,) = capsys.readouterr().err.strip().splitlines()
        assert "--verbosity" in error and "'LOUD'" in error
    finally:
        evalboard_logger.setLevel(before)
