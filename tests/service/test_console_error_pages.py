"""Error pages are console pages: styled (the console's stylesheet), with a way back that works, for 403
(with and without a role), 404, 429 (login lockout) and 500."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string
from django.test import Client

pytestmark = pytest.mark.django_db

STYLED = "console/console.css"


def test_404_is_styled_with_a_way_back(staff):
    client = Client()
    client.force_login(staff.operator)
    response = client.get("/no-such-page/")
    html = response.content.decode()
    assert response.status_code == 404 and STYLED in html and "Back to the dashboard" in html
    assert 'href="/"' in html and "<nav" in html  # the menu is there too


def test_403_without_a_role_offers_a_log_out_not_the_same_403(staff):
    client = Client()
    client.force_login(staff.norole)
    html = client.get("/people/").content.decode()
    assert STYLED in html and "has no role yet" in html and "Log out" in html and "Back to the dashboard" not in html
    client.force_login(staff.operator)
    html = client.get("/models/").content.decode()
    assert "does not allow" in html and "Back to the dashboard" in html


def test_500_page_is_styled_without_a_request():
    html = render_to_string("500.html")
    assert STYLED in html and "Something went wrong" in html and 'href="/"' in html


def test_the_login_lockout_page_is_styled_and_leads_back(users, settings):
    settings.AXES_FAILURE_LIMIT = 2
    client = Client()
    for _ in range(3):
        response = client.post("/login/", {"username": "owner", "password": "wrong"}, REMOTE_ADDR="203.0.113.7")
    html = response.content.decode()
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert STYLED in html and "try again in" in html and 'href="/login/"' in html


def test_a_wrong_password_says_how_many_attempts_are_left(users, settings):
    settings.AXES_FAILURE_LIMIT = 4
    client = Client()
    first = client.post("/login/", {"username": "owner", "password": "wrong"}, REMOTE_ADDR="203.0.113.8")
    assert "3 more wrong passwords" in first.content.decode()
    client.post("/login/", {"username": "owner", "password": "wrong"}, REMOTE_ADDR="203.0.113.8")
    third = client.post("/login/", {"username": "owner", "password": "wrong"}, REMOTE_ADDR="203.0.113.8")
    assert "1 more wrong password for" in third.content.decode()
