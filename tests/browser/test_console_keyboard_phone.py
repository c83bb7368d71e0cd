"""Keyboard and phone: the first Tab reaches a skip link, the menu marks the current page (aria-current), the
photo chooser is reached with Tab alone, and at 390 px no main page is wider than the screen."""

from __future__ import annotations

import pytest

from .conftest import log_in, screenshot
from .console_world import main_pages, make_user, small_world

pytestmark = [pytest.mark.django_db(transaction=True)]

ACTIVE = "document.activeElement && (document.activeElement.getAttribute('type') || document.activeElement.tagName)"


def test_keyboard_reaches_the_skip_link_and_the_file_chooser(page, live_server, django_user_model):
    world = small_world()
    operator = make_user(django_user_model, "operator")
    log_in(page, operator.username, "pw-browser-1")
    page.goto(f"/people/{world.person.pk}/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    assert page.get_attribute("nav a[aria-current=page]", "href") == "/people/"
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate(ACTIVE) == "file":
            break
    assert page.evaluate(ACTIVE) == "file", "Tab never reached the file chooser"
    screenshot(page, "console2-file-chooser-focused")


def test_no_main_page_overflows_a_phone(page, live_server, django_user_model):
    world = small_world()
    admin = make_user(django_user_model, "admin")
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, admin.username, "pw-browser-1")
    wide = {}
    for url in main_pages(world):
        page.goto(url)
        page.wait_for_timeout(200)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 0:
            wide[url] = overflow
    page.goto(f"/sites/{world.site.pk}/threshold/")
    screenshot(page, "console2-threshold-390")
    page.goto("/")
    screenshot(page, "console2-dashboard-390")
    assert wide == {}
