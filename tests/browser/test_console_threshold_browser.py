"""Loosening a threshold in the browser: the confirmation with the what-if summary and a reason, the history
with the reason, and the one-click revert. Screenshots: console2-loosen-*."""

from __future__ import annotations

import pytest

from .conftest import log_in, screenshot
from .console_world import make_user, small_world

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("width", [1366, 390])
def test_loosening_is_confirmed_with_a_reason_and_reverted_in_one_click(page, live_server, django_user_model,
                                                                        width):
    from access.models import Site

    world = small_world()
    admin = make_user(django_user_model, "admin")
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, admin.username, "pw-browser-1")
    page.goto(f"/sites/{world.site.pk}/threshold/?candidate=0.95")
    assert page.locator("[data-no-suggestion]").count() == 1
    page.click("text=Save 0.950 as the threshold")
    page.wait_for_selector("[data-confirm-loosening]")
    assert "decisions would change" in page.inner_text("[data-whatif-summary]")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    screenshot(page, f"console2-loosen-confirm-{width}")
    assert overflow <= 0
    page.fill("#reason", "night shift refused twice")
    page.click("text=Loosen to 0.950")
    page.wait_for_selector("[data-reason]")
    assert Site.objects.get(pk=world.site.pk).match_threshold == 0.95
    screenshot(page, f"console2-loosen-history-{width}")
    page.click("[data-revert]")
    page.wait_for_selector(".messages li.success")
    assert Site.objects.get(pk=world.site.pk).match_threshold == 0.9
