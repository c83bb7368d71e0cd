"""A second "host" on this machine: a network namespace joined to this one by a veth pair, for a worker that shares
nothing with the web service but the network (issue 19; docs/running.md, "Scaling out").

    sudo .venv/bin/python bench/two_hosts.py worker            # a remote worker for the `make run` of this machine

This one (the root namespace) is the web host: the web service, PostgreSQL and Redis. Only the worker runs in the
namespace, with its own empty data dir; the web host's data dir is hidden from it (an empty tmpfs is mounted over
it inside the worker's own mount namespace), so it cannot read MEDIA_ROOT even by mistake. The embedded PostgreSQL
and Redis listen on loopback only: :class:`Relay` forwards the veth address's ports to them (on a real network they
would listen on the LAN). The worker reaches the web service at ``http://<host address>:<port>``, so that address
must be in ``ALLOWED_HOSTS`` (``make run`` with ``ALLOWED_HOSTS=127.0.0.1,localhost,10.219.0.1``).

Used by tests/service/test_remote_worker_netns.py and by hand for ``bench/load_bench.py`` across the two hosts.
Needs root (``ip netns``, from iproute2); :func:`unavailable` says why not when it cannot be done.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _ip(*args: str, netns: str | None = None) -> None:
    prefix = ["ip", "netns", "exec", netns] if netns else []
    subprocess.run([*prefix, "ip", *args], check=True, capture_output=True, text=True, timeout=20)


def unavailable() -> str | None:
    """Why network namespaces cannot be made here (None: they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); run as root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing: apt-get install iproute2"
    probe = f"fa19probe{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"cannot make a network namespace here: {getattr(exc, 'stderr', '') or exc}".strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=20)
    return None


class Namespace:
    """A network namespace with a veth pair to this one: ``host_ip`` on this side, ``peer_ip`` inside."""

    def __init__(self, subnet: int | None = None) -> None:
        tag = secrets.token_hex(3)
        self.name = f"faceaccess-{tag}"
        self.outside, self.inside = f"fah{tag}", f"faw{tag}"  # interface names: 15 characters at most
        n = subnet if subnet is not None else secrets.randbelow(200) + 20
        self.host_ip, self.peer_ip = f"10.219.{n}.1", f"10.219.{n}.2"
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self.outside, "type", "veth", "peer", "name", self.inside)
            _ip("link", "set", self.inside, "netns", self.name)
            _ip("addr", "add", f"{self.host_ip}/30", "dev", self.outside)
            _ip("link", "set", self.outside, "up")
            _ip("addr", "add", f"{self.peer_ip}/30", "dev", self.inside, netns=self.name)
            _ip("link", "set", self.inside, "up", netns=self.name)
            _ip("link", "set", "lo", "up", netns=self.name)
        except BaseException:
            self.close()
            raise

    def wrap(self, hide: Sequence[Path] = ()) -> list[str]:
        """The command prefix that runs a program inside the namespace, with each of ``hide`` covered by an empty
        tmpfs (``ip netns exec`` gives the program its own mount namespace, so the host's mounts are untouched)."""
        mounts = " && ".join(f"mount -t tmpfs -o size=1m,mode=0755 faceaccess-hidden '{p}'" for p in hide)
        shell = f"{mounts} && exec \"$@\"" if mounts else 'exec "$@"'
        return ["ip", "netns", "exec", self.name, "sh", "-c", shell, "sh"]

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=20)  # takes its veth end along
        subprocess.run(["ip", "link", "del", self.outside], capture_output=True, timeout=20)

    def __enter__(self) -> Namespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Relay:
    """Forwards TCP connections made to ``listen`` (host, port) to ``target`` (host, port): a loopback-only server
    made reachable from the namespace, as a LAN address would make it."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(listen, reuse_port=False)
        self.server.settimeout(0.5)
        self.closed = threading.Event()
        threading.Thread(target=self._accept, name=f"relay-{listen[1]}", daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
                try:
                    sock.shutdown(how)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed.set()
        self.server.close()


def relayed_url(url: str, host_ip: str) -> tuple[str, Relay]:
    """A relay on ``host_ip`` for the server of ``url`` (postgresql://, redis://), and the URL through it."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    relay = Relay((host_ip, parts.port), (parts.hostname, parts.port))
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth + '@' if auth else ''}{host_ip}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), relay


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A remote worker for this machine's `make run`, in a network "
                                     "namespace of its own, with its own empty data dir and no shared folder.")
    parser.add_argument("command", choices=["worker"])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/faceaccess-remote-worker"))
    parser.add_argument("--web-port", type=int, default=int(os.environ.get("FACEACCESS_PORT", "8000")))
    parser.add_argument("--concurrency", default="1")
    parser.add_argument("--name", default="remote")
    parser.add_argument("--subnet", type=int, default=19, help="the veth pair gets 10.219.<subnet>.1 (this side) "
                        "and .2 (the worker's); the web service's ALLOWED_HOSTS must list the .1 address")
    args = parser.parse_args(argv)
    reason = unavailable()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "faceaccess.settings")
    import django

    django.setup()
    from django.conf import settings

    database_url = os.environ.get("DATABASE_URL") or _embedded_database_url(settings)
    queues = f"{settings.ENGINE_QUEUES},celery"  # the doors first (the broker takes queues in this order)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    with Namespace(args.subnet) as ns:
        db_url, db_relay = relayed_url(database_url, ns.host_ip)
        redis_url, redis_relay = relayed_url(settings.CELERY_BROKER_URL, ns.host_ip)
        web_relay = Relay((ns.host_ip, args.web_port), ("127.0.0.1", args.web_port))
        env = {k: v for k, v in os.environ.items() if k not in ("MEDIA_ROOT", "DATABASE_URL", "REDIS_URL")}
        env.update(DATABASE_URL=db_url, REDIS_URL=redis_url, FACEACCESS_DATA_DIR=str(args.data_dir),
                   FACEACCESS_MEDIA_URL=f"http://{ns.host_ip}:{args.web_port}",
                   FACEACCESS_WORKER_KEY=settings.FACEACCESS_WORKER_KEY, FACEACCESS_PRELOAD_PIPELINE="1",
                   PYTHONPATH=str(REPO))
        argv = [*ns.wrap(hide=[settings.DATA_DIR]), sys.executable, "-m", "celery", "-A", "faceaccess", "worker",
                "-Q", queues, "-c", args.concurrency, "-P", "prefork", "-l", "INFO", "-n", f"{args.name}@%h"]
        print(f"namespace {ns.name}: worker at {ns.peer_ip}, web host at {ns.host_ip} (relays for PostgreSQL, "
              f"Redis and the web service); the web service must allow the host {ns.host_ip} (ALLOWED_HOSTS)",
              flush=True)
        from faceaccess.embedded.process import die_with_parent

        proc = subprocess.Popen(argv, cwd=REPO, env=env, start_new_session=True, preexec_fn=die_with_parent())

        def stop(signum: int, frame: object) -> None:  # also when started in the background (SIGINT ignored there)
            raise KeyboardInterrupt

        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, stop)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGTERM)
            return proc.wait(30)
        finally:
            for relay in (db_relay, redis_relay, web_relay):
                relay.close()


def _embedded_database_url(settings) -> str:
    from urllib.parse import quote

    db = settings.DATABASES["default"]
    auth = f"{quote(db['USER'], safe='')}:{quote(db['PASSWORD'], safe='')}"
    return f"postgresql://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


if __name__ == "__main__":
    raise SystemExit(main())
