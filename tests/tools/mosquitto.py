"""A real MQTT broker for tests: Debian's mosquitto on a free loopback port, and a subscriber that records what it
hears. `make test` installs mosquitto (Makefile target `test-tools`); without it the tests that need it skip with the
install line, or fail under CI=true."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def need(path: str, package: str) -> None:
    """Skip (fail under CI=true) when a Debian tool the test needs is missing."""
    if Path(path).is_file() or shutil.which(path):
        return
    why = f"{path} not found: install it with `sudo apt-get install {package}` (make test does when it runs as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(why)
    pytest.skip(why)


class Broker:
    """mosquitto on 127.0.0.1:``port``; with ``users`` ({name: password}) anonymous clients are refused."""

    def __init__(self, folder: Path, port: int, users: dict[str, str] | None = None):
        need(MOSQUITTO, "mosquitto")
        self.folder, self.port, self.users = folder, port, users or {}
        self.proc: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> Broker:
        # As the user running the tests: mosquitto started as root would switch to its own account, which cannot
        # read a password file in the test's private temp dir.
        conf = [f"listener {self.port} 127.0.0.1", "persistence false", "log_dest stderr",
                f"user {getpass.getuser()}"]
        if self.users:
            passwd = self.folder / "passwd"
            passwd.write_text("")
            for name, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), name, password], check=True,
                               capture_output=True)
            passwd.chmod(0o600)
            conf += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            conf.append("allow_anonymous true")
        (self.folder / "mosquitto.conf").write_text("\n".join(conf) + "\n")
        log = open(self.folder / "mosquitto.log", "ab")  # noqa: SIM115 - kept open for the process's life
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.folder / "mosquitto.conf")], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        from faceaccess.embedded.process import port_is_open

        while not port_is_open("127.0.0.1", self.port):
            assert self.proc.poll() is None and time.monotonic() < deadline, (self.folder / "mosquitto.log").read_text()
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


@dataclass
class Heard:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class Subscriber:
    """A paho client subscribed to ``topics`` (QoS 1) that keeps every message."""

    port: int
    topics: list[str]
    messages: list[Heard] = field(default_factory=list)
    username: str | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        import paho.mqtt.client as paho

        self.lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="faceaccess-test-subscriber")
        if self.username:
            self.client.username_pw_set(self.username, self.password)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in self.topics])
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._keep
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        assert subscribed.wait(5), "the test subscriber could not subscribe"

    def _keep(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append(Heard(message.topic, message.payload, bool(message.retain)))

    def wait_for(self, topic: str, count: int = 1, timeout: float = 5.0) -> list[Heard]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.on(topic)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"heard {len(self.on(topic))} message(s) on {topic} within {timeout} s; all: "
                             f"{[m.topic for m in self.messages]}")

    def on(self, topic: str) -> list[Heard]:
        with self.lock:
            return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
