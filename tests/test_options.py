"""Run options are defined once (RunOptions) and drive the CLI flags, evaluate() and the nightly
config: every flag is an option and every option a flag; bad values from Python, the CLI or the
config are one line (exit 2 on the command line), never coerced; max_length reaches the adapters
from all three."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import evalboard
import evalboard.engine.api as api
import pytest
from evalboard.cli import build_parser, main
from evalboard.engine.nightly import load_config, run_update
from evalboard.engine.options import RunOptions, config_keys, option_info
from evalboard.errors import UserError

REPO_ROOT = Path(__file__).resolve().parent.parent
NOT_OPTIONS = {"help", "model", "tasks"}  # what to evaluate, not how
# lm-eval's flags that translate into options (model_args, gen_kwargs) or only print or are implied
NOT_OPTIONS |= {"model_args", "gen_kwargs", "log_samples", "write_out"}
NOT_OPTIONS |= {"verbosity"}  # what is logged, not how the run is made
RUN_OWN = {"show_subtasks"}  # how the summary is printed, not how the run is made


def _subparser(name: str) -> argparse.ArgumentParser:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[name]


def _option_actions(name: str, own: set[str] = set()) -> dict[str, argparse.Action]:
    return {a.dest: a for a in _subparser(name)._actions if a.dest not in NOT_OPTIONS | own
            and "--results" not in a.option_strings and a.help != argparse.SUPPRESS}  # not lm-eval's spellings


# compare's own flags; its --results is another name for --output
COMPARE_OWN = {"runs", "base", "candidate", "base_label", "candidate_label", "trained_on", "alpha", "markdown", "html",
               "json", "fail_on_regression", "metric", "arena", "arena_limit", "arena_max_new_tokens", "judge",
               "judge_tokens", "judge_mode"}


@pytest.mark.parametrize("command", ["run", "compare"])
def test_every_flag_is_an_option_and_every_option_a_flag(command: str) -> None:
    actions = _option_actions(command, COMPARE_OWN if command == "compare" else RUN_OWN)
    assert set(actions) == set(RunOptions.model_fields)
    for name, field in RunOptions.model_fields.items():
        flag = option_info(name).flag or f"--{name.replace('_', '-')}"
        assert actions[name].option_strings == [flag]
        if command == "compare" and name == "output_dir":  # one folder with --results: unset, it is results/
            assert actions[name].default is None
            continue
        assert actions[name].default == field.get_default(call_default_factory=True), name
        assert actions[name].help == option_info(name).help


def test_existing_flag_spellings_and_defaults_are_kept() -> None:
    args = _subparser("run").parse_args(["--model", "hf:x"])
    assert (args.batch_size, args.seed, args.concurrency, args.output_dir) == (8, 1234, 8, Path("results"))
    assert args.cache is True and args.include_paths == [] and args.formulation == "auto"
    args = _subparser("run").parse_args(["--model", "hf:x", "--no-cache", "--include-path", "a", "--include-path",
                                         "b", "--apply-chat-template", "--max-length", "77", "--output", "out"])
    assert args.cache is False and args.include_paths == [Path("a"), Path("b")] and args.apply_chat_template
    assert args.max_length == 77 and args.output_dir == Path("out")
    quick = _subparser("quickstart").parse_args([])
    assert (quick.limit, quick.generative_limit, quick.max_new_tokens, quick.batch_size) == (20, 5, 256, 8)


@pytest.mark.parametrize("argv,fragment", [
    (["--max-length", "0"], "argument --max-length: must be a positive whole number, not 0"),
    (["--num-fewshot", "2.9"], "argument --num-fewshot: must be a whole number >= 0, not '2.9'"),
    (["--temperature", "-1"], "argument --temperature: must be a finite number >= 0"),
    (["--temperature", "inf"], "argument --temperature: must be a finite number >= 0, not inf"),
    (["--temperature", "nan"], "argument --temperature: must be a finite number >= 0, not nan"),
])
def test_bad_flags_are_one_line_usage_errors(argv: list[str], fragment: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--model", "chance:0", "--tasks", "arc_easy", *argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and fragment in err, err
    with pytest.raises(SystemExit):  # quickstart's flags come from the same options
        main(["quickstart", "--generative-limit", "0"])
    assert "must be a positive whole number or a fraction between 0 and 1, not 0" in capsys.readouterr().err


class _Captured(Exception):
    pass


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list:
    """The RunConfig each evaluate() call builds; the run itself stops there."""
    configs: list = []

    def capture(config):
        configs.append(config)
        raise _Captured()

    monkeypatch.setattr(api, "run_evaluation", capture)
    return configs


@pytest.mark.parametrize("keywords,fragment", [
    ({"limit": 1.5}, "limit must be a positive whole number or a fraction between 0 and 1 or None, not 1.5"),
    ({"limit": 0}, "limit must be a positive whole number or a fraction between 0 and 1 or None, not 0"),
    ({"num_fewshot": 2.9}, "num_fewshot must be a whole number >= 0 or None, not 2.9"),
    ({"batch_size": True}, "batch_size must be a positive whole number or auto, not True"),
    ({"apply_chat_template": "false"}, "apply_chat_template must be True or False, not 'false'"),
    ({"include_paths": "tasks"}, "include_paths must be a list (each a path), not 'tasks'"),
    ({"temperature": "0.5"}, "temperature must be a finite number >= 0 or None, not '0.5'"),
    ({"temperature": float("inf")}, "temperature must be a finite number >= 0 or None, not inf"),
    ({"formulation": "letters"}, "formulation must be one of auto, loglikelihood, generative"),
    ({"cache": "false"}, "cache must be True or False or a path, not 'false'"),
    ({"max_length": -5}, "max_length must be a positive whole number or None"),
    ({"limitt": 3}, "unknown option limitt; allowed: allow_code_execution,"),
])
def test_evaluate_rejects_wrong_types_and_values_in_one_line(keywords, fragment, captured) -> None:
    with pytest.raises(UserError) as error:
        evalboard.evaluate("chance:0", "arc_easy", **keywords)
    message = str(error.value)
    assert message.startswith("evaluate(): ") and fragment in message and "\n" not in message, message
    assert captured == []  # rejected before anything ran


def test_one_definition_builds_the_run(captured) -> None:
    with pytest.raises(_Captured):
        evalboard.evaluate("chance:0", "arc_easy,mmlu", limit=3, num_fewshot=0, apply_chat_template=True,
                           system_prompt="Be brief.", max_new_tokens=9, max_length=77, batch_size=2, cache=False,
                           output_dir=None, include_paths=("mine",), label="L", seed=5, temperature=0)
    (config,) = captured
    assert config.tasks == ["arc_easy", "mmlu"] and config.label == "L" and config.output_dir is None
    assert config.cache_path is None and config.include_paths == [Path("mine")]
    options, settings = config.options, config.adapter_settings
    assert (options.limit, options.num_fewshot, options.seed, options.max_new_tokens) == (3, 0, 5, 9)
    assert options.style.apply_chat_template and options.style.system_prompt == "Be brief."
    assert (settings.max_length, settings.batch_size) == (77, 2)


def test_max_length_reaches_the_adapter_settings_from_the_cli(captured, tmp_path: Path) -> None:
    with pytest.raises(_Captured):
        main(["run", "--model", "chance:0", "--tasks", "arc_easy", "--max-length", "77", "--no-cache",
              "--output", str(tmp_path)])
    assert captured[0].adapter_settings.max_length == 77 and captured[0].cache_path is None
    with pytest.raises(_Captured):
        main(["compare", "--base", "chance:0", "--candidate", "chance:1", "--tasks", "arc_easy",
              "--max-length", "55"])
    assert captured[1].adapter_settings.max_length == 55


NIGHTLY = """\
results: results
defaults:
  limit: 2
  max_length: 32
models:
  - spec: chance:0
    label: own
    max_length: 64
  - chance:1
tasks:
  - arc_easy
"""


def test_max_length_reaches_the_adapter_settings_from_the_nightly_config(captured, tmp_path: Path) -> None:
    path = tmp_path / "leaderboard.yaml"
    path.write_text(NIGHTLY)
    result = run_update(load_config(path), log=io.StringIO())
    assert len(result.failures) == 2  # each model's evaluation stopped at the captured config
    by_label = {config.label: config for config in captured}
    assert by_label["own"].adapter_settings.max_length == 64  # the model's own wins over the default
    assert by_label["chance:1"].adapter_settings.max_length == 32
    assert by_label["own"].options.limit == 2


BAD_CONFIGS = [
    ("tasks: [{name: arc_easy, num_fewshot: 2.9}]", "tasks[0] (arc_easy).num_fewshot must be a whole number >= 0 "
     "or null, not 2.9"),
    ("tasks: [arc_easy]\ndefaults: {apply_chat_template: 'false'}",
     'defaults.apply_chat_template must be true or false, not "false"'),
    ("tasks: arc_easy", "tasks must be a non-empty list of task names or mappings with name:, not \"arc_easy\""),
    ("tasks: [arc_easy]\ninclude_paths: mytasks", 'include_paths must be a list (each a path), not "mytasks"'),
    ("tasks: [{name: arc_easy, batch_size: 4}]", "tasks[0] (arc_easy): unknown key batch_size; allowed: "
     "allow_code_execution, formulation, limit, max_new_tokens, name, num_fewshot, samples_per_problem, stop, temperature, top_k, top_p"),
    ("tasks: [arc_easy]\nbootstrap_rounds: 1000.0", "bootstrap_rounds must be a whole number >= 0, not 1000.0"),
    ("tasks: [arc_easy]\nnightly: true", "unknown key nightly; allowed: arenas, bootstrap_rounds, bootstrap_seed,"),
]


@pytest.mark.parametrize("body,fragment", BAD_CONFIGS)
def test_bad_nightly_configs_are_one_line_and_exit_2(body: str, fragment: str, tmp_path: Path) -> None:
    path = tmp_path / "leaderboard.yaml"
    path.write_text(f"models: [{{spec: 'chance:0', max_length: 16}}]\n{body}\n")
    result = subprocess.run([sys.executable, "-m", "evalboard.cli", "leaderboard", "update", "--config", str(path),
                             "--dry-run"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"evalboard: error: {path}: ") and fragment in lines[0], lines[0]
    assert result.stdout == "" and not (tmp_path / "results").exists()


def test_nightly_sections_take_the_options_documented_for_them() -> None:
    docs = (REPO_ROOT / "docs" / "nightly.md").read_text()
    for section in ("defaults", "models", "tasks"):
        for key in config_keys(section):
            assert f"`{key}`" in docs, (section, key)
    assert set(config_keys("models")) & set(config_keys("tasks")) == {"formulation"}
    assert set(config_keys("defaults")) == (set(config_keys("models")) | set(config_keys("tasks"))
                                            | {"seed", "data_source", "data_dir", "cache", "executor", "ray_address"}
                                            ) - {"label"}
