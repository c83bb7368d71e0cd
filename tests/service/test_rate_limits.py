"""Issue 9, defect 5: rate limits and lockouts, so that password guessing is refused cheaply.

- the token endpoint: django-axes counts its failures and locks the IP / username out (429 + Retry-After, with a
  back-off); a locked-out guess is refused before the password is hashed; DRF throttles it per IP and per username;
- the console's /login/ and the Django admin: the same lockout;
- snapshots: DRF throttle per camera (429 + Retry-After), counted in the shared Redis, failing open when Redis
  does not answer.
"""

from __future__ import annotations

import io
import logging
from unittest import mock

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from rest_framework.test import APIClient

from access.models import AccessEvent

from .conftest import image_bytes, make_camera

pytestmark = pytest.mark.django_db
TOKEN = "/api/v1/auth/token/"
SNAPSHOTS = "/api/v1/snapshots/"


def _throttle_keys():
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    return client, list(client.scan_iter(match="faceaccess:*:throttle_*"))


def clear_throttle_counts():
    from faceaccess.api import throttling

    client, keys = _throttle_keys()
    if keys:
        client.delete(*keys)
    throttling._Breaker.skip_until = 0.0


@pytest.fixture(autouse=True)
def fresh_throttle_counts():
    """The counts live in the session's Redis (shared by every test): start and leave them empty."""
    clear_throttle_counts()
    yield
    clear_throttle_counts()


@pytest.fixture
def rates(settings):
    def set_rates(**rates):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                                   "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                                                              **rates}}
    return set_rates


@pytest.fixture
def hashing():
    """Counts the password checks (the tests use the MD5 hasher)."""
    with mock.patch.object(MD5PasswordHasher, "verify", autospec=True, side_effect=MD5PasswordHasher.verify) as m:
        yield m


def guess(password: str, username: str = "owner", ip: str = "10.0.0.7"):
    return APIClient(REMOTE_ADDR=ip).post(TOKEN, {"username": username, "password": password})


# ---------------------------------------------------------------- token endpoint ----------------------------

def test_token_guesses_are_locked_out_and_refused_before_hashing(users, hashing):
    from axes.models import AccessAttempt

    answers = [guess(f"wrong-{i}") for i in range(40)]
    codes = [r.status_code for r in answers]
    assert codes[:4] == [400] * 4 and codes[4:] == [429] * 36, codes
    assert hashing.call_count == 5  # the 5 guesses before the lockout; none after
    errors = [r.json()["error"] for r in answers[4:]]
    # axes' lockout from the 5th failure; from the 11th the per-username throttle (10/min) refuses even earlier
    assert errors == ["locked_out"] * 6 + ["throttled"] * 30, errors
    assert "try again" in answers[4].json()["detail"]
    assert all(int(r["Retry-After"]) >= 1 for r in answers[4:])
    # django-axes counted the token endpoint's failures, those refused while locked out included
    attempt = AccessAttempt.objects.get(username="owner", ip_address="10.0.0.7")
    assert attempt.path_info == TOKEN and attempt.failures_since_start == 10

    clear_throttle_counts()  # a minute later: the throttles let it through, the lockout (back-off) does not
    right = guess("pw-owner", ip="10.0.0.8")  # the right password, from elsewhere, while the username is locked
    assert (right.status_code, right.json()["error"]) == (429, "locked_out")
    assert hashing.call_count == 5  # refused, not even checked


def test_the_lockout_backs_off(users, settings):
    settings.FACEACCESS_LOGIN_COOLOFF_SECONDS = 60
    settings.FACEACCESS_LOGIN_COOLOFF_MAX_SECONDS = 600
    for _ in range(4):
        assert guess("wrong").status_code == 400
    waits = [int(guess("wrong")["Retry-After"]) for _ in range(6)]
    assert [round(w / 60) for w in waits] == [1, 2, 4, 8, 10, 10], waits  # doubled per attempt, capped


def test_a_successful_login_clears_the_count(users):
    for _ in range(4):
        assert guess("wrong").status_code == 400
    assert guess("pw-owner").status_code == 200
    assert [guess("wrong").status_code for _ in range(5)] == [400, 400, 400, 400, 429]


def test_token_endpoint_throttled_per_ip_and_per_username(users, rates, hashing):
    rates(token_ip="3/min", token_username="3/min")
    # one IP, different usernames (nobody reaches axes' limit of 5 failures per username)
    codes = [guess("wrong", username=f"nobody-{i}", ip="10.1.0.1").status_code for i in range(4)]
    assert codes == [400, 400, 400, 429]
    # one username, different IPs
    codes = [guess("pw-teammate", username="teammate", ip=f"10.2.0.{i}").status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
    throttled = guess("pw-teammate", username="teammate", ip="10.2.0.99")
    assert throttled.json()["error"] == "throttled" and 1 <= int(throttled["Retry-After"]) <= 60
    checks = hashing.call_count
    guess("wrong", username="nobody-9", ip="10.1.0.1")
    assert hashing.call_count == checks  # a throttled request never reaches the password check


# ---------------------------------------------------------------- console and admin --------------------------

@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_console_and_admin_logins_lock_out(client, users, hashing, path):
    def login(password):
        return client.post(path, {"username": "owner", "password": password}, REMOTE_ADDR="10.3.0.1")

    codes = [login("wrong").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 200, 429]  # the form again four times, then locked out
    locked = login("pw-owner")
    assert locked.status_code == 429 and int(locked["Retry-After"]) >= 1
    assert b"try again" in locked.content
    assert hashing.call_count == 5


# ---------------------------------------------------------------- snapshots ----------------------------------

def post(camera):
    f = io.BytesIO(image_bytes((3, 4, 5)))
    f.name = "snap.png"
    return camera.client().post(SNAPSHOTS, {"image": f}, format="multipart")


def test_snapshots_are_throttled_per_camera_in_the_shared_redis(site, camera, media, rates):
    rates(snapshots="3/min")
    codes = [post(camera).status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429]
    throttled = post(camera)
    assert throttled.json()["error"] == "throttled" and 1 <= int(throttled["Retry-After"]) <= 60
    assert AccessEvent.objects.count() == 3  # nothing stored for a refused post
    assert post(make_camera(site, "back door")).status_code == 202  # another camera has its own count
    _, keys = _throttle_keys()  # kept in Redis, where every web thread and process sees them
    assert len(keys) == 2


def test_throttling_fails_open_when_redis_does_not_answer(settings, camera, media, rates, caplog):
    from faceaccess.embedded import free_port

    rates(snapshots="1/min")
    settings.CACHES = {**settings.CACHES, "throttle": {**settings.CACHES["throttle"],
                                                        "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
    with caplog.at_level(logging.WARNING, logger="faceaccess.api.throttling"):
        codes = [post(camera).status_code for _ in range(3)]
    assert codes == [202, 202, 202]
    warnings = [r.getMessage() for r in caplog.records if r.name == "faceaccess.api.throttling"]
    assert len(warnings) == 1 and "not rate limited" in warnings[0]  # once, then the cache is left alone a while
