"""Docs match the code: every FACEACCESS_* setting is in docs/running.md's table."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented():
    knobs = set(re.findall(r"FACEACCESS_[A-Z0-9_]+", (REPO / "faceaccess" / "settings.py").read_text()))
    documented = set(re.findall(r"FACEACCESS_[A-Z0-9_]+", (REPO / "docs" / "running.md").read_text()))
    assert sorted(knobs - documented) == []
