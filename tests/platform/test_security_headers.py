"""Issue 17, item 5: sessions and security headers. Behind a TLS proxy ``manage.py check --deploy`` has no HSTS
(W004) or insecure-cookie (W012, W016) warnings; sessions are short and sliding; Permissions-Policy is sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def check_deploy(tmp_path: Path, **env: str) -> str:
    clean = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8",
             "DJANGO_SETTINGS_MODULE": "faceaccess.settings", "FACEACCESS_DATA_DIR": str(tmp_path / "data"),
             "PYTHONPATH": str(REPO), **env}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=REPO, env=clean,
                            capture_output=True, text=True, timeout=120)
    return result.stdout + result.stderr


def test_behind_a_tls_proxy_check_deploy_has_no_hsts_or_cookie_warnings(tmp_path):
    plain = check_deploy(tmp_path)
    assert "security.W004" in plain  # the probe itself works: without the proxy there is no HSTS
    behind = check_deploy(tmp_path, FACEACCESS_BEHIND_TLS_PROXY="1")
    for warning in ("security.W004", "security.W012", "security.W016"):
        assert warning not in behind, behind


def test_sessions_are_short_and_sliding():
    from django.conf import settings as live

    assert live.SESSION_SAVE_EVERY_REQUEST is True
    assert live.SESSION_COOKIE_AGE == 8 * 3600


@pytest.mark.django_db
def test_permissions_policy_allows_only_our_own_camera(client):
    response = client.get("/login/")
    policy = response["Permissions-Policy"]
    assert "camera=(self)" in policy and "microphone=()" in policy and "geolocation=()" in policy
