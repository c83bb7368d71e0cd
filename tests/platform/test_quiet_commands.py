"""manage.py commands print only their own output: django-axes' start-up banner ("AXES: BEGIN ...") no longer
lands on stderr before it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_manage_py_prints_no_axes_banner():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "AXES" not in done.stderr and "AXES" not in done.stdout, done.stderr
