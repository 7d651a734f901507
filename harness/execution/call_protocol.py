"""The call channel between a benchmark's trusted checker and the untrusted program it tests.

The checker (the benchmark's own test code) and the program run in two separate sandboxes; the
only thing between them is a pair of pipes carrying one JSON message per line. The checker sends
calls, the program answers with plain data, and the checker compares. Nothing but plain data
crosses: never pickles, code or objects, so a result's `__eq__`, a patched module or a forged exit
can only change what the program's own process does, never the checker's comparison or verdict.

Values ("plain data"): None, bool, int, float (NaN and infinities included), str, and lists of
plain data as JSON; tuples, sets, frozensets, dicts (any plain hashable keys) and bytes as
one-key objects: {"tuple": [...]}, {"set": [...]}, {"frozenset": [...]}, {"dict": [[k, v], ...]},
{"bytes": "hex"}; {"float": "nan"} (any text float() reads) for a runtime whose JSON has no NaN.
Types must be exactly these (a subclass of int with its own `__eq__` is not plain data). Messages:

    checker -> program   {"call": [args...], "kwargs": [[name, value], ...]}
    program -> checker   {"ready": true}                       loaded; entry point found
                         {"error": "..."}                      could not load / answer
                         {"ok": value}                         the call returned value
                         {"raised": "TypeName", "message": "..."}   the call raised

A program in any language can speak this (runtimes.py has a JavaScript driver), so the verdict
never depends on the language a program is written in.

This file is imported by the harness (and its tests) and its text is also put in front of the
sandbox's fork server (`evalboard.execution.sandbox._server_source`), so it must stay standalone,
standard-library only, and valid for any Python 3.7+.
"""
import os  # json is imported where it is used: a plain sandbox never needs it

MAX_MESSAGE_BYTES = 8 << 20  # a longer line from the program is a protocol error (the program fails)


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed message of plain data."""


def encode_value(value):
    """Plain data -> its JSON-able form; TypeError for anything that is not exactly plain data."""
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is float or kind is str:
        return value
    if kind is list:
        return [encode_value(item) for item in value]
    if kind is tuple:
        return {"tuple": [encode_value(item) for item in value]}
    if kind is set or kind is frozenset:
        return {kind.__name__: [encode_value(item) for item in value]}
    if kind is dict:
        return {"dict": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    if kind is bytes:
        return {"bytes": value.hex()}
    raise TypeError(f"a {kind.__module__}.{kind.__qualname__} is not plain data")


_CONTAINERS = {"tuple": tuple, "set": set, "frozenset": frozenset}


def decode_value(data):
    """The JSON-parsed form -> plain data (builtin types only); ProtocolError if malformed."""
    kind = type(data)
    if data is None or kind is bool or kind is int or kind is float or kind is str:
        return data
    if kind is list:
        return [decode_value(item) for item in data]
    if kind is dict and len(data) == 1:
        (tag, body), = data.items()
        if tag in _CONTAINERS and type(body) is list:
            try:
                return _CONTAINERS[tag](decode_value(item) for item in body)
            except TypeError as e:  # an unhashable member of a set
                raise ProtocolError(f"bad {tag}: {e}") from None
        if tag == "dict" and type(body) is list:
            result = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise ProtocolError("a dict entry must be a [key, value] pair")
                try:
                    result[decode_value(pair[0])] = decode_value(pair[1])
                except TypeError as e:  # an unhashable key
                    raise ProtocolError(f"bad dict key: {e}") from None
            return result
        if tag == "float" and type(body) is str and len(body) < 100:
            try:
                return float(body)
            except ValueError as e:
                raise ProtocolError(f"bad float: {e}") from None
        if tag == "bytes" and type(body) is str:
            try:
                return bytes.fromhex(body)
            except ValueError as e:
                raise ProtocolError(f"bad bytes: {e}") from None
    raise ProtocolError(f"not plain data: {repr(data)[:200]}")


def dumps(message):
    """A message (already encoded) -> one line of bytes."""
    import json

    return json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def loads(line):
    """One line -> a message object (a dict); ProtocolError for anything else."""
    import json

    try:
        message = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError, MemoryError) as e:  # UnicodeDecodeError is a ValueError
        raise ProtocolError(f"not a JSON message: {str(e)[:200]}") from None
    if type(message) is not dict:
        raise ProtocolError("a message must be a JSON object")
    return message


class LineReader:
    """Reads newline-terminated messages from a pipe, at most `limit` bytes each."""

    def __init__(self, fd, limit=MAX_MESSAGE_BYTES):
        self._fd, self._limit, self._buffer, self._scanned = fd, limit, bytearray(), 0

    def read(self):
        """The next line without its newline, or None at end of file."""
        while True:
            end = self._buffer.find(b"\n", self._scanned)
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                self._scanned = 0
                return line
            self._scanned = len(self._buffer)
            if len(self._buffer) > self._limit:
                raise ProtocolError(f"a message longer than {self._limit} bytes")
            chunk = os.read(self._fd, 1 << 16)
            if not chunk:
                return None
            self._buffer += chunk


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
