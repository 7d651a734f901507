"""Programs in other languages, tested in the sandbox the same way as Python ones.

Two ways, both with the program in its own runtime in one sandbox, answering calls of its function
over the call channel (fds 3 and 4), and a trusted checker in another sandbox whose ending alone is
the verdict, so nothing the program prints or exits with counts, whatever the language:

- `Runtime` (JavaScript): the checker is Python (e.g. HumanEval's tests) and the program's driver
  speaks call_protocol.py's plain data.
- `Language` (MultiPL-E's six): the checker is the benchmark's own tests in the program's language,
  with the function's name bound to a proxy; both sides speak that language's channel
  (`languages/<file>`, which says its encoding). docs/sandbox.md says why each part is there.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from evalboard.errors import UserError
from evalboard.execution.sandbox import CheckedProgram


@dataclass(frozen=True)
class Runtime:
    name: str
    executable: str  # looked up on PATH; it must lie in the sandbox's view (/usr)
    arguments: tuple[str, ...]  # after the executable; "{program}" is the program's path
    driver: str  # appended to the program; `{entry_point}` is replaced by the function's name

    def argv(self) -> tuple[str, ...]:
        return (_executable(self.name, self.executable, f"(Debian: apt-get install -y {self.executable})"),
                *self.arguments)


def _executable(language: str, executable: str, hint: str) -> str:
    """`executable`'s path on PATH, or one line saying that `language`'s programs need it and how to get it."""
    path = shutil.which(executable)
    if path is None:
        raise UserError(f"{language} programs need `{executable}`, which is not installed {hint}")
    return path


# Values: JSON numbers, strings, booleans, null, arrays; {"tuple": [...]} arrives as an array,
# {"dict": [[k, v], ...]} as a Map, {"set": [...]} as a Set; answers the other way round (a plain
# object becomes a dict). Anything else (a function, undefined, a class instance) is not plain data.
_JAVASCRIPT_DRIVER = r"""
;(function () {
  const fs = require("fs");
  const entry = (typeof {entry_point} === "function") ? {entry_point} : null;
  const send = (message) => fs.writeSync(4, JSON.stringify(message) + "\n");
  const decode = (v) => {
    if (Array.isArray(v)) return v.map(decode);
    if (v === null || typeof v !== "object") return v;
    if ("tuple" in v) return v.tuple.map(decode);
    if ("set" in v || "frozenset" in v) return new Set((v.set || v.frozenset).map(decode));
    if ("dict" in v) return new Map(v.dict.map(([k, x]) => [decode(k), decode(x)]));
    throw new TypeError("cannot decode " + JSON.stringify(v));
  };
  const encode = (v) => {
    if (v === null || typeof v === "boolean" || typeof v === "string") return v;
    if (typeof v === "number") return Number.isFinite(v) ? v : {float: String(v)};
    if (Array.isArray(v)) return v.map(encode);
    if (v instanceof Set) return {set: [...v].map(encode)};
    if (v instanceof Map) return {dict: [...v].map(([k, x]) => [encode(k), encode(x)])};
    if (Object.getPrototypeOf(v) === Object.prototype) return {dict: Object.entries(v).map(([k, x]) => [k, encode(x)])};
    throw new TypeError("a " + typeof v + " is not plain data");
  };
  if (entry === null) { send({error: "{entry_point} is not a function"}); return; }
  send({ready: true});
  const chunk = Buffer.alloc(1 << 16);
  let pending = "";
  for (;;) {
    let end = pending.indexOf("\n");
    while (end < 0) {
      const n = fs.readSync(3, chunk, 0, chunk.length, null);
      if (n === 0) return;
      pending += chunk.toString("utf8", 0, n);
      end = pending.indexOf("\n");
    }
    const call = JSON.parse(pending.slice(0, end));
    pending = pending.slice(end + 1);
    let result;
    try {
      result = entry(...decode(call.call));
    } catch (e) {
      send({raised: (e && e.name) || "Error", message: String(e && e.message)});
      continue;
    }
    try { send({ok: encode(result)}); } catch (e) { send({error: "the function returned " + e.message}); }
  }
})();
"""

JAVASCRIPT = Runtime("JavaScript", "node", ("{program}",), _JAVASCRIPT_DRIVER)
RUNTIMES = {"javascript": JAVASCRIPT}


def checked_in(runtime: Runtime, program: str, entry_point: str, checker: str) -> CheckedProgram:
    """A program in `runtime`'s language, with its driver, against a trusted Python checker."""
    driver = runtime.driver.replace("{entry_point}", entry_point)
    return CheckedProgram(program + "\n" + driver, entry_point, checker, runtime=runtime.argv(),
                          checker_preload=("typing", "math", "random", "copy", "string"))


# --- a benchmark's own tests in the program's language (MultiPL-E) -----------------------------------

_CHANNELS = Path(__file__).with_name("languages")


@dataclass(frozen=True)
class Language:
    """A language whose benchmark tests are written in it: the program and its checker (the tests,
    trusted) each run in that language's runtime, in their own sandboxes, and speak the channel of
    `languages/<channel>` over the call pipes. The checker's exit status alone is the verdict."""

    name: str
    executable: str
    packages: tuple[str, ...]  # Debian: the runtime and the test library the benchmark's tests use
    channel: str
    serve: str  # appended to the program: answer calls of `{entry_point}`
    proxy: str  # before the tests: `{entry_point}` bound to the proxy
    opening: str = ""  # what a file must start with (PHP's open tag)
    library_probe: tuple[str, ...] = ()  # arguments that fail unless the test library is installed
    launcher: str = ""  # a bash script that execs the runtime ("$0": the runtime, "$1": the program)

    def argv(self) -> tuple[str, ...]:
        runtime = _installed(self)
        if self.launcher:
            return (_executable(self.name, "bash", "(Debian: apt-get install -y bash)"), "-c", self.launcher,
                    runtime, "{program}")
        return (runtime, "{program}")

    def checked(self, program: str, entry_point: str, tests: str) -> CheckedProgram:
        """The program (with the channel's serving side) against `tests` (with the proxy)."""
        channel = _channel_source(self.channel)
        argv = self.argv()
        program_side = program + "\n" + channel + "\n" + self.serve.replace("{entry_point}", entry_point) + "\n"
        checker_side = (self.opening + channel + "\n" + self.proxy.replace("{entry_point}", entry_point) + "\n"
                        + tests)
        return CheckedProgram(program_side, entry_point, checker_side, runtime=argv, checker_runtime=argv)


@functools.cache
def _channel_source(name: str) -> str:
    return (_CHANNELS / name).read_text(encoding="utf-8")


@functools.cache
def _installed(language: Language) -> str:
    """The runtime's path, once its test library is known to load; else one line naming the packages."""
    hint = f"(Debian: apt-get install -y {' '.join(language.packages)}, or bash scripts/install_runtimes.sh)"
    path = _executable(language.name, language.executable, hint)
    if language.library_probe:
        probe = subprocess.run([path, *language.library_probe], capture_output=True, timeout=60, check=False)
        if probe.returncode != 0:
            raise UserError(f"the {language.name} tests need their test library, which does not load {hint}")
    return path


LANGUAGES = {
    "javascript": Language(
        "JavaScript", "node", ("nodejs",), "javascript.js",
        serve='__evalboard.serve(typeof {entry_point} === "function" ? {entry_point} : undefined);',
        proxy="__evalboard.expectReady();\nfunction {entry_point}(...args) { return __evalboard.call(args); }"),
    "lua": Language(
        "Lua", "lua5.4", ("lua5.4", "lua-unit"), "lua.lua",
        serve="__evalboard.serve({entry_point})",
        proxy="__evalboard.expect_ready()\nfunction {entry_point}(...) return __evalboard.call(...) end",
        library_probe=("-e", "require('luaunit')"),
        # Lua's io cannot take an inherited descriptor and may not reopen the harness's pipes by
        # path; pipes made inside the sandbox (bash's process substitution) it may.
        launcher='exec "$0" "$1" 3< <(exec cat <&3) 4> >(exec cat >&4)'),
    "ruby": Language(
        "Ruby", "ruby", ("ruby", "ruby-test-unit"), "ruby.rb",
        serve="EvalboardCall.serve(self, :{entry_point})",
        proxy="EvalboardCall.expect_ready\ndef {entry_point}(*args)\n  EvalboardCall.call(args)\nend",
        library_probe=("-e", "require 'test/unit'; Test::Unit::AutoRunner.need_auto_run = false")),
    "php": Language(
        "PHP", "php", ("php-cli",), "php.php",
        serve="__evalboard_serve('{entry_point}');",
        proxy="__evalboard_expect_ready();\nfunction {entry_point}(...$args) { return __evalboard_call($args); }",
        opening="<?php\n"),
    "perl": Language(
        "Perl", "perl", ("perl", "libtest-deep-perl"), "perl.pl",
        serve="EvalboardCall::serve('{entry_point}');",
        proxy="EvalboardCall::expect_ready();\nsub {entry_point} { return EvalboardCall::call(@_); }",
        library_probe=("-MTest::Deep", "-e", "1")),
    "bash": Language(
        "Bash", "bash", ("bash",), "bash.sh",
        serve="__evalboard_serve {entry_point}",
        proxy='__evalboard_expect_ready\n{entry_point}() { __evalboard_call "$@"; }'),
}
