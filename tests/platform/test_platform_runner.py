"""`make run`'s runner end to end: it comes up (PostgreSQL, Redis, migrate, admin, Celery worker,
the web server), serves, stops cleanly on Ctrl-C (SIGINT) leaving no process behind, and a restart keeps the
data. Runs on a temp data dir and free ports, so it never touches a developer's var/ or port 8000."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from faceaccess.embedded import free_port
from faceaccess.embedded.process import pid_alive

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 240

pytestmark = pytest.mark.slow


class Runner:
    def __init__(self, data: Path, env: dict[str, str]) -> None:
        self.log_path = data.parent / f"runner-{time.monotonic_ns()}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "faceaccess.runner"], cwd=REPO, env=env,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_banner(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            text = self.output()
            if "Press Ctrl-C to stop." in text:
                return text
            if self.proc.poll() is not None:
                pytest.fail(f"runner exited with {self.proc.returncode}:\n{text[-5000:]}")
            time.sleep(0.5)
        self.proc.kill()
        pytest.fail(f"runner not up after {START_TIMEOUT_S}s:\n{self.output()[-5000:]}")

    def descendants(self) -> set[int]:
        """Every process below the runner (servers run in their own sessions, so walk parent links)."""
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                parents[int(stat.parent.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
        found, frontier = set(), {self.proc.pid}
        while frontier:
            children = {pid for pid, ppid in parents.items() if ppid in frontier} - found
            found |= children
            frontier = children
        return found

    def interrupt(self, timeout: float = 120) -> int:
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C delivers
        return self.proc.wait(timeout)


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def admin_login(base: str, username: str, password: str) -> bool:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/admin/login/", timeout=30).read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"csrfmiddlewaretoken": csrf, "username": username, "password": password,
                                   "next": "/admin/"}).encode()
    request = urllib.request.Request(f"{base}/admin/login/?next=/admin/", data=form,
                                     headers={"Referer": f"{base}/admin/login/"})
    with opener.open(request, timeout=30) as response:
        return response.url.rstrip("/").endswith("/admin") and "Log out" in response.read().decode()


def test_runner_up_ctrl_c_and_restart_keeps_data():
    tmp = Path(tempfile.mkdtemp(prefix="faceaccess-runner-"))
    tmp.chmod(0o755)  # the unprivileged PostgreSQL account must reach the data dir
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT")}
    env.update(FACEACCESS_DATA_DIR=str(tmp / "data"), FACEACCESS_PORT=str(port),
               FACEACCESS_PG_PORT=str(free_port()), FACEACCESS_REDIS_PORT=str(free_port()),
               FACEACCESS_PRELOAD_PIPELINE="0", FACEACCESS_WEB_THREADS="4")
    base = f"http://127.0.0.1:{port}"

    first = Runner(tmp / "data", env)
    try:
        banner = first.wait_banner()
        login = re.search(r"log in as\s+(\S+) / (\S+)", banner)
        assert login, banner[-3000:]
        username, password = login.groups()
        status, body = http_get(f"{base}/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok")
        assert http_get(f"{base}/api/schema/")[0] == 200
        assert admin_login(base, username, password)
        token = subprocess.run([sys.executable, "manage.py", "create_token", username], cwd=REPO, env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
        assert http_get(f"{base}/api/v1/", {"Authorization": f"Token {token}"})[0] == 200
        children = first.descendants()
        assert len(children) >= 4  # postgres, redis, celery worker, the web server (and their own children)
        # the web server is the one held against slow clients (tests/platform/test_slow_clients.py)
        assert any(b"faceaccess.serve" in cmdline(pid) for pid in children)
    finally:
        code = first.interrupt()
    assert code == 0, first.output()[-3000:]
    assert "stopped; data kept in" in first.output()
    time.sleep(1)
    assert not [pid for pid in children if pid_alive(pid)], "processes left after Ctrl-C"

    second = Runner(tmp / "data", env)
    try:
        banner = second.wait_banner()
        assert "log in as" not in banner  # the admin account survived, no new password is made
        assert http_get(f"{base}/api/v1/", {"Authorization": f"Token {token}"})[0] == 200  # so did the token
        assert admin_login(base, username, password)
    finally:
        assert second.interrupt() == 0, second.output()[-3000:]
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
