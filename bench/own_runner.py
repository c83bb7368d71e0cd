"""What the benchmarks that start their own `make run` share (fault_bench, guess_bench): the runner on a temp data
dir and free ports, and a small JSON HTTP client. Standard library only, besides the project's free_port (the
scripts put the project on sys.path first)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 60) -> tuple[int, dict, dict]:
    """(status, JSON body, headers); status 0 when nothing answered."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        status, raw, got = exc.code, exc.read(), dict(exc.headers)
    except (urllib.error.URLError, OSError):
        return 0, {}, {}
    try:
        return status, json.loads(raw), got
    except ValueError:
        return status, {}, got


class OwnRunner:
    """`python -m faceaccess.runner` (what `make run` starts) on a temp data dir and free ports, with a fresh
    admin password (``password``); its output goes to ``log``."""

    def __init__(self, threads: int, prefix: str) -> None:
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
        self.base = f"http://127.0.0.1:{port}"
        self.log = self.tmp / "runner.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "faceaccess.runner"], cwd=REPO, env=self.env,
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
