"""The banner `make run` prints names the console first (it is where a new admin starts)."""

from __future__ import annotations

from pathlib import Path

from faceaccess.runner import _banner


def test_the_banner_names_the_console_url(capsys):
    _banner("http://127.0.0.1:8000", Path("/tmp/var"), "admin login: admin / secret")
    out = capsys.readouterr().out
    assert "Console:             http://127.0.0.1:8000/\n" in out
    assert out.index("Console:") < out.index("API docs")
