"""What the access log downloads per page: full 1080p snapshots versus the server's thumbnails, and what a
thumbnail costs the web process. LFW photos (../shared) scaled to 1920x1080, JPEG quality 85, 20 rows.

    .venv/bin/python bench/thumbnail_bench.py [--rows 20]
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

from PIL import Image

from faceaccess.thumbnails import thumbnail

LFW = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "lfw" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args()
    files = sorted(LFW.glob("*/*.jpg"))[: args.rows]
    if not files:
        raise SystemExit(f"no LFW images under {LFW}")
    full = small = 0
    spent = 0.0
    for path in files:
        out = io.BytesIO()
        Image.open(path).convert("RGB").resize((1920, 1080)).save(out, "JPEG", quality=85)
        data = out.getvalue()
        start = time.perf_counter()
        small += len(thumbnail(data, 160))
        spent += time.perf_counter() - start
        full += len(data)
    print(f"{len(files)} snapshots of 1920x1080: full {full / 1024:.0f} KB, thumbnails {small / 1024:.0f} KB "
          f"({full / max(small, 1):.0f}x less), {1000 * spent / len(files):.1f} ms per thumbnail")


if __name__ == "__main__":
    main()
