// evalboard's call channel for JavaScript (see runtimes.py). Both sides are JavaScript: the program's
// (it answers calls of its function) and the trusted checker's (the benchmark's tests, whose entry
// point is a proxy). One JSON array per line; values tagged: ["u"] undefined, ["n"] null,
// ["b", bool], ["f", "number text"], ["s", text], ["a", [...]], ["o", [[key, value], ...]].
const __evalboard = (() => {
  const fs = require("fs");
  const encode = (v) => {
    if (v === undefined) return ["u"];
    if (v === null) return ["n"];
    if (typeof v === "boolean") return ["b", v];
    if (typeof v === "number") return ["f", Object.is(v, -0) ? "-0" : String(v)];
    if (typeof v === "string") return ["s", v];
    if (Array.isArray(v)) return ["a", Array.from(v, encode)];
    const proto = Object.getPrototypeOf(v);
    if (typeof v === "object" && (proto === Object.prototype || proto === null)) {
      return ["o", Object.keys(v).map((k) => [["s", k], encode(v[k])])];
    }
    throw new TypeError("a " + typeof v + " is not plain data");
  };
  const decode = (m) => {
    if (Array.isArray(m)) {
      const [tag, body] = m;
      if (tag === "u") return undefined;
      if (tag === "n") return null;
      if (tag === "b" && typeof body === "boolean") return body;
      if (tag === "f" && typeof body === "string") return Number(body);
      if (tag === "s" && typeof body === "string") return body;
      if (tag === "a" && Array.isArray(body)) return body.map(decode);
      if (tag === "o" && Array.isArray(body)) {
        const o = {};
        for (const pair of body) {
          if (!Array.isArray(pair) || pair.length !== 2) break;
          Object.defineProperty(o, String(decode(pair[0])),
            {value: decode(pair[1]), enumerable: true, writable: true, configurable: true});
        }
        return o;
      }
    }
    throw new TypeError("not a value: " + JSON.stringify(m).slice(0, 200));
  };
  const chunk = Buffer.alloc(1 << 16);
  let pending = Buffer.alloc(0);
  const receive = () => {  // the next message from fd 3, or null at its end
    for (;;) {
      const end = pending.indexOf(10);
      if (end >= 0) {
        const line = pending.subarray(0, end).toString("utf8");
        pending = pending.subarray(end + 1);
        return JSON.parse(line);
      }
      let n;
      try { n = fs.readSync(3, chunk, 0, chunk.length, null); } catch (e) { if (e.code === "EAGAIN") continue; throw e; }
      if (n === 0) return null;
      pending = Buffer.concat([pending, chunk.subarray(0, n)]);
    }
  };
  const send = (message) => fs.writeSync(4, JSON.stringify(message) + "\n");

  // The program's side: answer calls of `entry` until the checker closes the channel.
  const serve = (entry) => {
    if (typeof entry !== "function") { send(["error", "the entry point is not a function"]); return; }
    send(["ready"]);
    for (let call = receive(); call !== null; call = receive()) {
      let result;
      try {
        result = entry(...call[1].map(decode));
      } catch (e) {
        send(["raised", String(e && e.name) + ": " + String(e && e.message)]);
        continue;
      }
      let reply;
      try { reply = ["ok", encode(result)]; } catch (e) { reply = ["error", "the function returned " + e.message]; }
      send(reply);
    }
  };

  // The checker's side (trusted): anything but a well-formed answer ends the tests as failed.
  const fail = (why) => { process.stderr.write("CandidateFailed: " + why + "\n"); process.exit(1); };
  const answer = () => {
    let m;
    try { m = receive(); } catch (e) { fail("a malformed message"); }
    if (m === null) fail("the program ended before answering");
    if (!Array.isArray(m)) fail("a malformed message");
    return m;
  };
  const expectReady = () => {
    const m = answer();
    if (m[0] !== "ready") fail(m[0] === "error" ? String(m[1]) : "the program did not load");
  };
  const call = (args) => {
    send(["call", args.map(encode)]);
    const m = answer();
    if (m[0] === "raised") fail("CandidateRaised: " + String(m[1]));
    if (m[0] !== "ok") fail(m[0] === "error" ? String(m[1]) : "a malformed message");
    try { return decode(m[1]); } catch (e) { fail(e.message); }
  };
  return {serve, expectReady, call};
})();
