"""Programs in other languages (MultiPL-E's), tested the same way as Python ones.

A candidate in another language runs with its own runtime in the program's sandbox, with a small
driver appended that speaks the call protocol (call_protocol.py) on fds 3 and 4: it answers the
checker's calls of the entry point with plain data. The checker stays trusted Python in its own
sandbox, and its ending alone is the verdict, so nothing the program prints or exits with counts,
whatever the language. A runtime is its argv ("{program}" is the program's file) and that driver.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from evalboard.errors import UserError
from evalboard.execution.sandbox import CheckedProgram


@dataclass(frozen=True)
class Runtime:
    name: str
    executable: str  # looked up on PATH; it must lie in the sandbox's view (/usr)
    arguments: tuple[str, ...]  # after the executable; "{program}" is the program's path
    driver: str  # appended to the program; `{entry_point}` is replaced by the function's name

    def argv(self) -> tuple[str, ...]:
        path = shutil.which(self.executable)
        if path is None:
            raise UserError(f"{self.name} programs need `{self.executable}`, which is not installed "
                            f"(Debian: apt-get install -y {self.executable})")
        return (path, *self.arguments)


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
