"""``python -m access.bridge --server http://faceaccess:8000 --token-file /run/secrets/bridge-token``: the camera
bridge on a machine of its own (no database, no Django: it talks to the web service over HTTP). On the server itself
``manage.py run_bridge`` takes both from the settings."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from .quiet import quiet_opencv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="FaceAccess camera bridge")
    parser.add_argument("--server", required=True, help="the web service, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token-file", type=Path, required=True,
                        help="a file holding the web service's FACEACCESS_BRIDGE_TOKEN")
    parser.add_argument("--refresh", type=float, default=5.0, help="seconds between reads of the camera list")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(args.server, args.token_file.read_text().strip(), args.refresh)


def run(server: str, token: str, refresh: float = 5.0) -> int:
    quiet_opencv()  # before the first import of cv2 (the service's)
    from .service import Bridge

    bridge = Bridge(server, token, refresh=refresh)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: bridge.stop())
    bridge.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
