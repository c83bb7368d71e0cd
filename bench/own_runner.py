"""What the benchmarks that start their own `make run` share (fault_bench, guess_bench): the runner on a temp data
dir and free ports, and how long their requests may take (they talk HTTP through faceaccess.http_client). Standard
library only, besides the project's free_port (the scripts put the project on sys.path first)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 60.0  # seconds a request may take


class OwnRunner:
    """`python -m faceaccess.runner` (what `make run` starts) on a temp data dir and free ports, with a fresh
    admin password (``password``) and ``env`` added to its environment; its output goes to ``log``. ``repo``: the
    tree whose code it runs (another revision's, from ``git archive``, for a before/after comparison)."""

    def __init__(self, threads: int, prefix: str, env: dict[str, str] | None = None, repo: Path = REPO) -> None:
        from faceaccess.embedded import free_port

        self.tmp = Path(tempfile.mkdtemp(prefix=prefix))
        self.tmp.chmod(0o755)  # the unprivileged PostgreSQL account must reach the data dir
        self.data = self.tmp / "data"
        port = free_port()
        self.password = secrets.token_urlsafe(12)
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT")}
        self.env.update(FACEACCESS_DATA_DIR=str(self.data), FACEACCESS_PORT=str(port),
                        FACEACCESS_PG_PORT=str(free_port()), FACEACCESS_REDIS_PORT=str(free_port()),
                        FACEACCESS_WEB_THREADS=str(threads), FACEACCESS_ADMIN_PASSWORD=self.password)
        self.env.update(env or {})
        if repo != REPO:
            self.env["PYTHONPATH"] = str(repo)  # before the installed (editable) tree
        self.base = f"http://127.0.0.1:{port}"
        self.log = self.tmp / "runner.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "faceaccess.runner"], cwd=repo, env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_up(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Press Ctrl-C to stop." in self.output():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise SystemExit(f"the runner did not come up:\n{self.output()[-3000:]}")

    def stop(self, keep: bool = False) -> None:
        """Ctrl-C the runner (continued first: a benchmark may have paused it) and remove the temp dir unless
        ``keep``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- the runner's processes, from /proc ---------

def tree_of(rev: str) -> Path:
    """A temp copy of revision ``rev`` of this repository (``git archive``); the caller removes it."""
    out = Path(tempfile.mkdtemp(prefix="faceaccess-rev-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def command_line(pid: int) -> str:
    """The process's command line, arguments joined by spaces ("" when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def web_pids(runner_pid: int) -> list[int]:
    """The runner's web server processes (``python -m faceaccess.serve``)."""
    return [p for p in child_pids(runner_pid) if "faceaccess.serve" in command_line(p)]
