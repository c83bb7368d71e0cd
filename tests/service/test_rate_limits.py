"""Issue 9, defect 5, and issue 17, item 3: rate limits and lockouts, so that password guessing is refused cheaply
and nobody can lock someone else out.

- the token endpoint: django-axes counts its failures and locks the username out from that IP (429 +
  Retry-After, with a capped back-off); a locked-out guess is refused before the password is hashed; DRF
  throttles it per IP; the same account from another address, or another account from that address, still logs in;
- the console's /login/ and the Django admin: the same lockout, plus a throttle of password checks per address;
- admins lift a lockout on the console's Lockouts page, or with axes' commands;
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
    # axes' lockout from the 5th failure; from the 21st the per-IP throttle (20/min) refuses even earlier
    assert errors == ["locked_out"] * 16 + ["throttled"] * 20, errors
    assert "try again" in answers[4].json()["detail"]
    assert all(int(r["Retry-After"]) >= 1 for r in answers[4:])
    # django-axes counted the token endpoint's failures, those refused while locked out included
    attempt = AccessAttempt.objects.get(username="owner", ip_address="10.0.0.7")
    assert attempt.path_info == TOKEN and attempt.failures_since_start == 20

    clear_throttle_counts()  # a minute later: the throttle lets it through, the lockout (back-off) does not
    locked = guess("pw-owner")  # the right password, from the guesser's address
    assert (locked.status_code, locked.json()["error"]) == (429, "locked_out")
    assert hashing.call_count == 5  # refused, not even checked
    # ... but the owner, from any other address, is not locked out (issue 17, item 3)
    assert guess("pw-owner", ip="10.0.0.8").status_code == 200


def test_the_lockout_backs_off(users, settings):
    settings.FACEACCESS_LOGIN_COOLOFF_SECONDS = 60
    settings.FACEACCESS_LOGIN_COOLOFF_MAX_SECONDS = 600
    for _ in range(4):
        assert guess("wrong").status_code == 400
    waits = [int(guess("wrong")["Retry-After"]) for _ in range(6)]
    assert [round(w / 60) for w in waits] == [1, 2, 4, 8, 10, 10], waits  # doubled per attempt, capped


def test_the_doubling_is_capped_by_default(users, rates, settings):
    """The issue's storm (12 wrong passwords in 2 s, and more) reaches the default cap, 15 minutes, and stays
    there: Retry-After 60 -> 120 -> 240 -> 480 -> 900 -> 900 ..."""
    rates(token_ip="1000/min")
    settings.FACEACCESS_LOGIN_RATE_PER_IP = "1000/min"
    assert settings.FACEACCESS_LOGIN_COOLOFF_MAX_SECONDS == 900
    for _ in range(4):
        assert guess("wrong").status_code == 400
    waits = [int(guess("wrong")["Retry-After"]) for _ in range(80)]  # past 2**64 too: no overflow
    assert [round(w / 60) for w in waits[:6]] == [1, 2, 4, 8, 15, 15], waits[:6]
    assert max(waits) <= 900 and waits[-1] >= 899


def test_a_successful_login_clears_the_count(users):
    for _ in range(4):
        assert guess("wrong").status_code == 400
    assert guess("pw-owner").status_code == 200
    assert [guess("wrong").status_code for _ in range(5)] == [400, 400, 400, 400, 429]


def test_token_endpoint_throttled_per_ip_not_per_username(users, rates, hashing):
    rates(token_ip="3/min")
    # one IP, different usernames (nobody reaches axes' limit of 5 failures per username)
    codes = [guess("wrong", username=f"nobody-{i}", ip="10.1.0.1").status_code for i in range(4)]
    assert codes == [400, 400, 400, 429]
    throttled = guess("wrong", username="nobody-8", ip="10.1.0.1")
    assert throttled.json()["error"] == "throttled" and 1 <= int(throttled["Retry-After"]) <= 60
    checks = hashing.call_count
    guess("wrong", username="nobody-9", ip="10.1.0.1")
    assert hashing.call_count == checks  # a throttled request never reaches the password check
    # one username from many IPs is not throttled: a count per username would let anyone lock its owner out
    codes = [guess("pw-teammate", username="teammate", ip=f"10.2.0.{i}").status_code for i in range(12)]
    assert codes == [200] * 12


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


def console_login(username: str, password: str, ip: str):
    from django.test import Client

    return Client().post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_a_storm_for_admin_from_one_address_does_not_lock_the_admin_out_elsewhere(users, hashing):
    """Issue 17, item 3: 12 wrong passwords for the admin in a burst from address A (the issue's storm)."""
    waits = [console_login("owner", "wrong", "203.0.113.9") for _ in range(12)]
    assert [r.status_code for r in waits] == [200] * 4 + [429] * 8
    assert int(waits[-1]["Retry-After"]) <= 900
    # the admin's right password from an address that did not fail logs in
    assert console_login("owner", "pw-owner", "198.51.100.4").status_code == 302
    # and so does another user behind the guesser's address (only owner@A is locked)
    assert console_login("teammate", "pw-teammate", "203.0.113.9").status_code == 302
    # owner@A stays locked, without its password being checked
    checks = hashing.call_count
    assert console_login("owner", "pw-owner", "203.0.113.9").status_code == 429
    assert hashing.call_count == checks


def test_password_checks_are_throttled_per_address(users, settings, hashing):
    """Several usernames from one address (no pair reaches the lockout): throttled per address, before hashing."""
    settings.FACEACCESS_LOGIN_RATE_PER_IP = "6/min"
    names = ["teammate", "outsider", "nobody"] * 3
    codes = [console_login(name, "wrong", "203.0.113.20").status_code for name in names[:8]]
    assert codes == [200] * 6 + [429] * 2
    refused = console_login("owner", "pw-owner", "203.0.113.20")
    assert refused.status_code == 429 and b"from this address" in refused.content
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert hashing.call_count == 4  # the 4 known users' passwords checked before the throttle; none after
    assert console_login("owner", "pw-owner", "203.0.113.21").status_code == 302  # another address: fine
    api = guess("pw-owner", ip="203.0.113.20")  # the token endpoint counts the same password checks
    assert (api.status_code, api.json()["error"]) == (429, "throttled")


def test_an_admin_unlocks_a_lockout_on_the_console(users, staff):
    from django.test import Client

    for _ in range(6):
        console_login("teammate", "wrong", "203.0.113.30")
    assert console_login("teammate", "pw-teammate", "203.0.113.30").status_code == 429
    for user in (staff.operator, staff.auditor):
        other = Client()
        other.force_login(user)
        assert other.get("/lockouts/").status_code == 403
        assert other.post("/lockouts/unlock/", {"username": "teammate", "ip_address": "203.0.113.30"}
                          ).status_code == 403
    assert console_login("teammate", "pw-teammate", "203.0.113.30").status_code == 429  # still locked

    admin = Client()
    admin.force_login(staff.admin)
    page = admin.get("/lockouts/").content.decode()
    assert "teammate" in page and "203.0.113.30" in page and "locked out" in page
    assert 'href="/lockouts/"' in page  # in an admin's menu
    answer = admin.post("/lockouts/unlock/", {"username": "teammate", "ip_address": "203.0.113.30"}, follow=True)
    assert "Unlocked teammate from 203.0.113.30" in answer.content.decode()
    assert "Nobody is locked out" in answer.content.decode()
    assert console_login("teammate", "pw-teammate", "203.0.113.30").status_code == 302
    operator = Client()
    operator.force_login(staff.operator)
    assert 'href="/lockouts/"' not in operator.get("/").content.decode()


def test_axes_commands_lift_lockouts(users):
    from axes.models import AccessAttempt
    from django.core.management import call_command

    for ip in ("203.0.113.40", "203.0.113.41"):
        for _ in range(5):
            console_login("owner", "wrong", ip)
    for _ in range(5):
        console_login("teammate", "wrong", "203.0.113.40")
    assert console_login("owner", "pw-owner", "203.0.113.40").status_code == 429
    call_command("axes_reset_username", "owner", stdout=io.StringIO())
    assert console_login("owner", "pw-owner", "203.0.113.40").status_code == 302
    assert AccessAttempt.objects.filter(username="owner").count() == 0
    assert console_login("teammate", "pw-teammate", "203.0.113.40").status_code == 429  # not that one
    call_command("axes_reset", stdout=io.StringIO())
    assert console_login("teammate", "pw-teammate", "203.0.113.40").status_code == 302
    assert AccessAttempt.objects.count() == 0


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
