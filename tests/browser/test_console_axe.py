"""Accessibility: axe-core (from the npm registry, installed by `make axe` under var/npm) run inside the main
console pages reports no serious or critical violation (contrast to WCAG AA, names of controls and links,
landmarks...). Injected through Playwright's evaluate, which the page's CSP does not govern."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import log_in, screenshot
from .console_world import main_pages, make_user, small_world

pytestmark = [pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parents[2] / "var" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
RUN = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations']});
  return r.violations.filter(v => ['serious', 'critical'].includes(v.impact))
    .map(v => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')}`);
}"""


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.is_file():
        why = f"axe-core is not installed at {AXE}: run `make axe` (npm install axe-core)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why)
        pytest.skip(why)
    return AXE.read_text()


@pytest.mark.parametrize("width", [1366, 390])
def test_main_pages_have_no_serious_accessibility_violation(page, live_server, django_user_model, axe_source,
                                                            width):
    world = small_world()
    admin = make_user(django_user_model, "admin")
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, admin.username, "pw-browser-1")
    found = {}
    for url in ["/login/", *main_pages(world)]:
        if url == "/login/":
            page.context.clear_cookies()
        page.goto(url)
        page.wait_for_timeout(300)
        page.evaluate(axe_source)
        violations = page.evaluate(RUN)
        if violations:
            found[url] = violations
        if url == "/login/":
            log_in(page, admin.username, "pw-browser-1")
    page.goto("/events/")
    screenshot(page, f"console2-axe-events-{width}")
    assert found == {}
