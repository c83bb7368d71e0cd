"""The console under its Content-Security-Policy in a real browser: no page reports a violation (an inline
style or script the policy blocks would break it), and forms that ask first still ask (console.js, not an
inline handler). Screenshots at 1366 and 390 px: out/screenshots/console2-*.png."""

from __future__ import annotations

import pytest

from .conftest import log_in, screenshot
from .console_world import main_pages, make_user, small_world

pytestmark = [pytest.mark.django_db(transaction=True)]

COLLECT = """window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample || ''}`.trim()));"""


def test_no_page_of_the_console_reports_a_csp_violation(page, live_server, django_user_model):
    world = small_world()
    admin = make_user(django_user_model, "admin")
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text) if "Content Security Policy" in m.text else None)
    page.add_init_script(COLLECT)
    log_in(page, admin.username, "pw-browser-1")
    violations = {}
    for url in main_pages(world):
        response = page.goto(url)
        assert response.status == 200, url
        assert "script-src 'self'" in response.headers.get("content-security-policy", ""), url
        page.wait_for_timeout(300)  # htmx's first swaps (live tiles, worker status)
        found = page.evaluate("window.__csp")
        if found:
            violations[url] = found
    assert violations == {} and messages == []

    # A form that asks first (data-confirm) still asks, and "no" keeps it from being sent.
    page.goto("/sites/")
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.click("text=Rotate key")
    page.wait_for_timeout(300)
    assert asked and "new key" in asked[0] and page.url.endswith("/sites/")
    assert page.evaluate("window.__csp") == []

    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for name, url in (("sites", "/sites/"), ("activity", "/activity/"), ("event", f"/events/{world.event.pk}/")):
            page.goto(url)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            screenshot(page, f"console2-{name}-{width}")
            assert overflow <= 0, (url, width, overflow)
