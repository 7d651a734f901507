// evalboard's call channel for PHP (see runtimes.py). Both sides are PHP: the program's (it answers
// calls of its function) and the trusted checker's (the benchmark's tests, whose entry point is a
// proxy). One JSON array per line; values tagged: ["n"] null, ["b", bool], ["i", "integer"],
// ["f", "float"], ["s", text], ["x", "hex bytes"] (not UTF-8), ["h", [[key, value], ...]] (every
// array: its keys and their order are kept, as `===` compares them).
function __evalboard_encode($v) {
    if ($v === null) return ["n"];
    if (is_bool($v)) return ["b", $v];
    if (is_int($v)) return ["i", (string)$v];
    if (is_float($v)) {
        if (is_nan($v)) return ["f", "nan"];
        if (is_infinite($v)) return ["f", $v > 0 ? "inf" : "-inf"];
        return ["f", var_export($v, true)];
    }
    if (is_string($v)) return preg_match('//u', $v) ? ["s", $v] : ["x", bin2hex($v)];
    if (is_array($v)) {
        $pairs = [];
        foreach ($v as $key => $item) $pairs[] = [__evalboard_encode($key), __evalboard_encode($item)];
        return ["h", $pairs];
    }
    throw new TypeError("a " . get_debug_type($v) . " is not plain data");
}

function __evalboard_decode($m) {
    if (is_array($m) && array_is_list($m) && count($m) >= 1 && is_string($m[0])) {
        $body = $m[1] ?? null;
        switch ($m[0]) {
            case "n": return null;
            case "b": if (is_bool($body)) return $body; break;
            case "i": if (is_string($body) && preg_match('/^-?\d+$/', $body)) return (int)$body; break;
            case "f":
                if ($body === "nan") return NAN;
                if ($body === "inf") return INF;
                if ($body === "-inf") return -INF;
                if (is_string($body) && is_numeric($body)) return (float)$body;
                break;
            case "s": if (is_string($body)) return $body; break;
            case "x": if (is_string($body) && preg_match('/^([0-9a-f]{2})*$/', $body)) return hex2bin($body); break;
            case "h":
                if (!is_array($body)) break;
                $array = [];
                foreach ($body as $pair) {
                    if (!is_array($pair) || count($pair) !== 2 || !array_is_list($pair)) throw new TypeError("a malformed array");
                    $key = __evalboard_decode($pair[0]);
                    if (!is_int($key) && !is_string($key)) throw new TypeError("a bad array key");
                    $array[$key] = __evalboard_decode($pair[1]);
                }
                return $array;
        }
    }
    throw new TypeError("not a value");
}

function __evalboard_channel() {
    static $channel = null;
    if ($channel === null) $channel = [fopen("php://fd/3", "rb"), fopen("php://fd/4", "wb")];
    return $channel;
}

function __evalboard_receive() {
    $line = fgets(__evalboard_channel()[0]);
    return $line === false ? null : json_decode($line, true, 512, JSON_THROW_ON_ERROR);
}

function __evalboard_send($message) {
    $output = __evalboard_channel()[1];
    fwrite($output, json_encode($message, JSON_THROW_ON_ERROR) . "\n");
    fflush($output);
}

// The program's side: answer calls of the function `$name` until the checker closes the channel.
function __evalboard_serve($name) {
    if (!function_exists($name)) { __evalboard_send(["error", "$name is not a function"]); return; }
    __evalboard_send(["ready"]);
    while (($call = __evalboard_receive()) !== null) {
        try {
            $result = $name(...array_map('__evalboard_decode', $call[1]));
        } catch (Throwable $e) {
            __evalboard_send(["raised", get_class($e) . ": " . $e->getMessage()]);
            continue;
        }
        try {
            $reply = ["ok", __evalboard_encode($result)];
        } catch (Throwable $e) {
            $reply = ["error", "the function returned " . $e->getMessage()];
        }
        __evalboard_send($reply);
    }
}

// The checker's side (trusted): anything but a well-formed answer ends the tests as failed.
function __evalboard_fail($why) {
    fwrite(STDERR, "CandidateFailed: $why\n");
    exit(1);
}

function __evalboard_answer() {
    try {
        $m = __evalboard_receive();
    } catch (Throwable $e) {
        __evalboard_fail("a malformed message");
    }
    if ($m === null) __evalboard_fail("the program ended before answering");
    if (!is_array($m) || !isset($m[0])) __evalboard_fail("a malformed message");
    return $m;
}

function __evalboard_expect_ready() {
    $m = __evalboard_answer();
    if ($m[0] !== "ready") __evalboard_fail($m[0] === "error" ? (string)($m[1] ?? "") : "the program did not load");
}

function __evalboard_call($args) {
    __evalboard_send(["call", array_map('__evalboard_encode', $args)]);
    $m = __evalboard_answer();
    if ($m[0] === "raised") __evalboard_fail("CandidateRaised: " . (is_string($m[1] ?? null) ? $m[1] : ""));
    if ($m[0] !== "ok" || !array_key_exists(1, $m)) __evalboard_fail($m[0] === "error" ? (string)($m[1] ?? "") : "a malformed message");
    try {
        return __evalboard_decode($m[1]);
    } catch (Throwable $e) {
        __evalboard_fail($e->getMessage());
    }
}
