"""Child-process plumbing shared by the embedded servers."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - non-glibc platforms
    _libc = None


class ServiceError(RuntimeError):
    """An embedded server could not be started or stopped."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the kernel says is free now (another process could still take it before we bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def die_with_parent(sig: int = signal.SIGTERM):
    """A preexec_fn: the kernel sends `sig` to the child when the process that started it dies,
    so a crashed or SIGKILLed parent does not leave servers running."""

    def _preexec() -> None:
        if _libc is not None:
            _libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return _preexec


def spawn(argv: list[str], log_path: Path, *, user: int | None = None, group: int | None = None,
          death_signal: int = signal.SIGTERM, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server in its own session (a terminal's Ctrl-C reaches only our runner, which then
    stops the servers in order), with its output appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        kwargs: dict = {}
        if user is not None:
            kwargs.update(user=user, group=group, extra_groups=[])
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=die_with_parent(death_signal), env=env, **kwargs,
        )


def stop_process(proc: subprocess.Popen, first: int, timeout: float, then: tuple[int, ...] = (signal.SIGKILL,)) -> None:
    """Send `first`, wait up to `timeout`, then escalate through `then` (waiting `timeout` each)."""
    for sig in (first, *then):
        if proc.poll() is not None:
            return
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def pid_alive(pid: int) -> bool:
    """True while the process runs (a zombie, exited but not yet reaped by its parent, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        # /proc/<pid>/stat: "pid (comm) state ..."; comm may hold spaces, so split after the last ')'.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def wait_pid_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return not pid_alive(pid)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
