"""The review flow from the keyboard: c confirms, u takes it back, j opens the next unreviewed event; the
dashboard's needs-attention list leads there. Screenshots: console2-inbox-*, console2-review-keys."""

from __future__ import annotations

import pytest

from .conftest import log_in, screenshot
from .console_world import make_user, small_world

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_review_with_keys_from_the_inbox(page, live_server, django_user_model):
    from access.models import EventReview

    world = small_world()
    operator = make_user(django_user_model, "operator")
    log_in(page, operator.username, "pw-browser-1")
    for width in (390, 1366):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto("/")
        assert page.locator("[data-attention] [data-kind=face_pick], [data-attention] [data-kind=no_photo]").count()
        screenshot(page, f"console2-inbox-{width}")
    page.goto("/events/?decision=unknown&reviewed=no")
    page.locator("[data-event] >> text=open").first.click()
    page.wait_for_selector("#review")
    page.keyboard.press("c")
    page.wait_for_selector("[data-review=confirmed]")
    assert EventReview.objects.filter(reviewer__username=operator.username).count() == 1
    screenshot(page, "console2-review-keys")
    page.keyboard.press("u")
    page.wait_for_selector(".messages li.success")
    assert not EventReview.objects.exists()
    before = page.url
    page.keyboard.press("j")
    page.wait_for_url(lambda url: url != before)
    assert page.url.endswith(f"/events/{world.event.pk + 1}/")  # the denied one, older than the unknown
