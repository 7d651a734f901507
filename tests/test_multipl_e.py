"""MultiPL-E's six languages: a program runs in its language's runtime in one sandbox and answers
calls of its function; MultiPL-E's own tests, unchanged, run in that language in another sandbox
with the function bound to a proxy, and their exit status alone is the verdict. Hand-written right
and wrong solutions of two problems pass and fail as they should in every language (with the
language's own equality: PHP's `!==` sees array keys), and printing, exiting or returning objects
that claim equality count for nothing. The items are MultiPL-E's (../shared/data/multipl_e)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from evalboard.errors import UserError
from evalboard.execution.runtimes import LANGUAGES, Language
from evalboard.execution.sandbox import SandboxLimits, find_sandbox_python, run_checked
from evalboard.tasks import multipl_e

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "multipl_e" / "prompts"
CODES = {"javascript": "js", "lua": "lua", "ruby": "rb", "php": "php", "perl": "pl", "bash": "sh"}

pytestmark = [pytest.mark.skipif(not SHARED.is_dir(), reason=f"MultiPL-E's items are not at {SHARED}"),
              pytest.mark.skipif(find_sandbox_python() is None, reason="no sandbox Python")]

# completions of HumanEval_0 has_close_elements (a bool), HumanEval_30 get_positive (a list) and
# HumanEval_12 longest (a string, or the language's None for no strings), right and wrong
RIGHT = {
    "javascript": ("  for (let i = 0; i < numbers.length; i++)\n    for (let j = 0; j < i; j++)\n"
                   "      if (Math.abs(numbers[i] - numbers[j]) < threshold) return true;\n  return false;\n}\n",
                   "  return l.filter((x) => x > 0);\n}\n",
                   "  let best;\n  for (const s of strings) if (best === undefined || s.length > best.length) best = s;\n"
                   "  return best;\n}\n"),
    "lua": ("  for i = 1, #numbers do\n    for j = 1, i - 1 do\n"
            "      if math.abs(numbers[i] - numbers[j]) < threshold then return true end\n    end\n  end\n"
            "  return false\nend\n",
            "  local out = {}\n  for _, x in ipairs(l) do if x > 0 then out[#out + 1] = x end end\n  return out\nend\n",
            "  local best = nil\n  for _, s in ipairs(strings) do if best == nil or #s > #best then best = s end end\n"
            "  return best\nend\n"),
    "ruby": ("  numbers.combination(2).any? { |a, b| (a - b).abs < threshold }\nend\n",
             "  l.select { |x| x > 0 }\nend\n",
             "  best = nil\n  strings.each { |s| best = s if best.nil? || s.length > best.length }\n  best\nend\n"),
    "php": ("  foreach ($numbers as $i => $a)\n    foreach ($numbers as $j => $b)\n"
            "      if ($i < $j && abs($a - $b) < $threshold) return true;\n  return false;\n}\n",
            "  return array_values(array_filter($l, fn($x) => $x > 0));\n}\n",
            "  $best = null;\n  foreach ($strings as $s) if ($best === null || strlen($s) > strlen($best)) $best = $s;\n"
            "  return $best;\n}\n"),
    "perl": ("  for my $i (0 .. $#$numbers) {\n    for my $j (0 .. $i - 1) {\n"
             "      return 1 if abs($numbers->[$i] - $numbers->[$j]) < $threshold;\n    }\n  }\n  return \"\";\n}\n",
             "  return [grep { $_ > 0 } @$l];\n}\n",
             "  my $best;\n  for my $s (@$strings) { $best = $s if !defined($best) || length($s) > length($best); }\n"
             "  return $best;\n}\n"),
    "bash": ("  local -a xs=($1)\n  local i j\n  for ((i = 0; i < ${#xs[@]}; i++)); do\n"
             "    for ((j = 0; j < i; j++)); do\n"
             "      if awk -v a=\"${xs[i]}\" -v b=\"${xs[j]}\" -v t=\"$2\" "
             "'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < t) }'; then echo true; return; fi\n"
             "    done\n  done\n  echo false",
             "  local x out=()\n  for x in $1; do if [[ $x -gt 0 ]]; then out+=(\"$x\"); fi; done\n  echo \"${out[*]}\"",
             "  local s best= found=\n  for s in $1; do if [[ -z $found || ${#s} -gt ${#best} ]]; then best=$s; found=1; fi; done\n"
             "  if [[ -z $found ]]; then echo None; else echo \"$best\"; fi"),
}
WRONG = {
    "javascript": ("  return numbers.length > 5;\n}\n", "  return l;\n}\n", "  return strings[strings.length - 1];\n}\n"),
    "lua": ("  return #numbers > 5\nend\n", "  return l\nend\n", "  return strings[#strings]\nend\n"),
    "ruby": ("  numbers.length > 5\nend\n", "  l\nend\n", "  strings.last\nend\n"),
    # keys kept by array_filter: the values are right, but `!==` compares keys too
    "php": ("  return count($numbers) > 5;\n}\n", "  return array_filter($l, fn($x) => $x > 0);\n}\n",
            "  return $strings ? $strings[count($strings) - 1] : null;\n}\n"),
    "perl": ("  return scalar(@$numbers) > 5 ? 1 : \"\";\n}\n", "  return $l;\n}\n", "  return $strings->[-1];\n}\n"),
    "bash": ("  echo true", "  echo \"$1\"", "  local s last=None\n  for s in $1; do last=$s; done\n  echo \"$last\""),
}
# completions of HumanEval_0 that try to pass without being right
CHEATS = {
    "javascript": {"prints_and_exits": "  return false;\n}\nconsole.log('ok');\nprocess.exit(0);\n",
                   "exits_in_the_call": "  process.exit(0);\n}\n",
                   "equal_to_anything": "  return {valueOf: () => true, toString: () => 'true'};\n}\n"},
    "lua": {"prints_and_exits": "  return false\nend\nprint('OK')\nos.exit(0)\n",
            "exits_in_the_call": "  os.exit(0)\nend\n",
            "equal_to_anything": "  return setmetatable({}, {__eq = function() return true end})\nend\n"},
    "ruby": {"prints_and_exits": "  false\nend\nputs '0 failures, 0 errors'\nexit!(0)\n",
             "exits_in_the_call": "  exit!(0)\nend\n",
             "equal_to_anything": "  o = Object.new\n  def o.==(other) = true\n  o\nend\n"},
    "php": {"prints_and_exits": "  return false;\n}\necho \"OK\\n\";\nexit(0);\n",
            "exits_in_the_call": "  exit(0);\n}\n",
            "equal_to_anything": "  return new ArrayObject([]);\n}\n"},
    "perl": {"prints_and_exits": "  return \"\";\n}\nprint \"ok!\\n\";\nexit 0;\n",
             "exits_in_the_call": "  exit 0;\n}\n",
             "equal_to_anything": "  package Liar; use overload 'eq' => sub { 1 }, '\"\"' => sub { 1 };\n"
                                  "  return bless {}, 'Liar';\n}\n"},
    "bash": {"prints_and_exits": "  echo false\n}\necho ok\nexit 0\n{",
             "exits_in_the_call": "  exit 0",
             "writes_to_the_channel": "  printf '1\\n2\\nok2\\nok' >&4; echo false"},
}


def _docs(language: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (SHARED / f"humaneval-{CODES[language]}-reworded.jsonl").open()]
    return multipl_e.to_docs(rows, "jsonl")


def _problems(language: str) -> dict[str, dict[str, Any]]:
    return {doc["entry_point"]: doc for doc in _docs(language)}


@pytest.mark.parametrize("language", list(LANGUAGES))
def test_right_solutions_pass_and_wrong_ones_fail_in_each_language(language: str) -> None:
    problems = _problems(language)
    cases = []
    for name, right, wrong in zip(("has_close_elements", "get_positive", "longest"), RIGHT[language], WRONG[language],
                                  strict=True):
        cases += [(name, right, True), (name, wrong, False)]
    cases += [("has_close_elements", cheat, False) for cheat in CHEATS[language].values()]
    checks = [multipl_e.checked(problems[name], completion) for name, completion, _ in cases]
    results = run_checked(checks, workers=2, limits=SandboxLimits(timeout_s=30))
    labels = ["right", "wrong"] * 3 + list(CHEATS[language])
    for label, (name, _, should_pass), result in zip(labels, cases, results):
        assert result.passed == should_pass, (language, name, label, result)
        assert result.status == ("passed" if should_pass else "failed"), (language, name, label, result)


def test_the_tasks_read_every_item_and_split_bash_at_its_closing_brace() -> None:
    for language, code in CODES.items():
        docs = _docs(language)
        assert len(docs) == len({doc["id"] for doc in docs}) == (158 if code == "sh" else 161), language
        assert all(doc["entry_point"] in doc["prompt"] and doc["language"] == code for doc in docs)
    doc = _problems("bash")["get_positive"]
    check = multipl_e.checked(doc, "  echo")
    assert check.program.startswith(doc["prompt"] + "  echo\n}\n")
    assert "\ncandidate() {" in check.checker and not check.checker.lstrip().startswith("}")
    assert check.runtime == check.checker_runtime and check.runtime[0].endswith("bash")


def test_a_missing_runtime_is_one_line_naming_its_package() -> None:
    missing = Language("Cobol", "cobc-not-installed", ("gnucobol",), "bash.sh", serve="", proxy="")
    with pytest.raises(UserError, match=r"^Cobol programs need `cobc-not-installed`, which is not installed "
                                        r"\(Debian: apt-get install -y gnucobol"):
        missing.argv()


def test_a_missing_runtime_is_refused_before_the_model_is_loaded(tmp_path: Path, monkeypatch) -> None:
    import dataclasses

    import evalboard

    monkeypatch.setitem(LANGUAGES, "lua", dataclasses.replace(LANGUAGES["lua"], executable="lua-not-installed"))
    (tmp_path / "data" / "multiple_lua").mkdir(parents=True)
    (tmp_path / "data" / "multiple_lua" / "test.jsonl").symlink_to(SHARED / "humaneval-lua-reworded.jsonl")
    # the model does not exist: the runtime's line, not the model's, shows the check came first
    with pytest.raises(UserError, match=r"^Lua programs need `lua-not-installed`, which is not installed"):
        evalboard.evaluate(f"hf:{tmp_path / 'no-such-model'}", ["multiple_lua"], limit=2, output_dir=None,
                           cache=False, data_dir=tmp_path / "data", allow_code_execution=True)


def test_the_task_runs_end_to_end_with_a_data_dir(tmp_path: Path, tiny_model: Path) -> None:
    import evalboard

    (tmp_path / "data" / "multiple_lua").mkdir(parents=True)
    (tmp_path / "data" / "multiple_lua" / "test.jsonl").symlink_to(SHARED / "humaneval-lua-reworded.jsonl")
    record = evalboard.evaluate(f"hf:{tiny_model}", ["multiple_lua"], limit=2, output_dir=None, cache=False,
                                data_dir=tmp_path / "data", allow_code_execution=True, max_new_tokens=16)
    samples = record.samples["multiple_lua"]
    assert [s.doc_id for s in samples] == ["HumanEval_0_has_close_elements", "HumanEval_100_make_a_pile"]
    assert record.tasks["multiple_lua"].metrics["pass@1"].value == 0.0  # a random tiny model writes no Lua
    assert all(s.scores["failure_kinds"] == ["failed"] for s in samples)
