"""Access rules in a real browser: the worked example (cleaning staff Mon-Fri 18:00-22:00 drawn on the weekly
grid, a server room camera with face + PIN), the rules page, and the person's page with where and when they may
enter and their PIN lockout; at desktop and phone width."""

from __future__ import annotations

import uuid

import pytest

from .conftest import log_in, screenshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def drag(page, day: str, first_slot: int, last_slot: int) -> None:
    """Paint half-hour cells first..last (inclusive) of a weekday's grid row with the mouse."""
    cells = page.locator(f'[data-cells="{day}"] .wg-cell')
    a, b = cells.nth(first_slot).bounding_box(), cells.nth(last_slot).bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=12)
    page.mouse.up()


def test_the_worked_example_in_the_console(page, live_server, django_user_model):
    from access.models import Camera, Site
    from access.rules.models import AccessLevel, PersonGroup, PersonPin
    from enrollment.models import Person
    from faceaccess import roles

    site = Site.objects.create(name="Office", timezone="Europe/Berlin")
    server_room = Camera(site=site, name="server room")
    server_room.set_new_key()
    server_room.save()
    cleo, ivan = Person.objects.create(name="Cleo Cleaner"), Person.objects.create(name="Ivan IT")
    crew = PersonGroup.objects.create(name="Cleaning staff")
    crew.members.add(cleo)
    admin = django_user_model.objects.create_user(f"admin-{uuid.uuid4().hex[:6]}", password="pw-browser-1")
    roles.set_role(admin, "admin")
    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, admin.username, "pw-browser-1")

    # Cleaning staff: Mon-Fri 18:00-22:00 at the office, painted on the grid (slots 36..43 = 18:00-22:00).
    page.goto("/rules/levels/new/")
    page.fill("#id_name", "Cleaning staff")
    for day in ("mon", "tue", "wed", "thu", "fri"):
        drag(page, day, 36, 43)
        assert page.input_value(f'input[data-day="{day}"]') == "18:00-22:00"
    page.fill('input[data-day="sat"]', "22:00-02:00")  # typed: a night crossing midnight
    page.locator('input[data-day="sat"]').dispatch_event("input")
    assert page.locator('[data-cells="sun"] .wg-cell.carry').count() == 4  # Sunday morning, 00:00-02:00
    page.check(f"#id_sites input[value='{site.pk}']")
    page.check(f"#id_groups input[value='{crew.pk}']")
    screenshot(page, "rules-01-level-grid-editor")
    page.click("button.primary")
    page.wait_for_selector("tr[data-level]")
    level = AccessLevel.objects.get(name="Cleaning staff")
    assert level.schedule == {**{d: [["18:00", "22:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                              "sat": [["22:00", "02:00"]]}

    # The server room: face + PIN, for Ivan at any time.
    page.goto(f"/cameras/{server_room.pk}/edit/")
    page.select_option("#id_verification", "face_pin")
    page.click("button[type=submit].primary")
    server_room.refresh_from_db()
    assert server_room.verification == "face_pin"
    it = AccessLevel.objects.create(name="Server room", holidays_too=True)
    it.cameras.add(server_room)
    it.people.add(ivan)

    page.goto("/rules/")
    page.fill(f"[data-holidays='{site.pk}'] input[name=date]", "2026-12-25")
    page.fill(f"[data-holidays='{site.pk}'] input[name=name]", "Christmas")
    page.click(f"[data-holidays='{site.pk}'] button[type=submit]")
    page.wait_for_selector(f"[data-holidays='{site.pk}'] li >> text=Christmas")
    levels = page.inner_text("table[data-levels]")
    assert "Mon-Fri 18:00-22:00, Sat 22:00-02:00, not on holidays" in levels and "server room" in levels
    screenshot(page, "rules-02-rules-page")

    # Ivan's PIN, locked after wrong tries: visible and unlockable on his page.
    page.goto(f"/people/{ivan.pk}/")
    page.fill("input[name=pin]", "482913")
    page.click("text=Set PIN")
    page.wait_for_selector("text=PIN is set")
    PersonPin.objects.filter(person=ivan).update(failures=5, locked_at="2026-12-03T07:00:00Z")
    page.goto(f"/people/{ivan.pk}/")
    entries = page.inner_text("table[data-entries]")
    assert "server room" in entries and "face + PIN" in entries and "any time" in entries
    assert "locked after 5 wrong PINs" in page.inner_text("[data-credentials]")
    screenshot(page, "rules-03-person-where-and-when")
    page.click("text=Unlock PIN")
    page.wait_for_selector("text=PIN is unlocked")
    assert PersonPin.objects.get(person=ivan).locked_at is None

    page.goto(f"/people/{cleo.pk}/")
    assert "group Cleaning staff" in page.inner_text("table[data-entries]")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/rules/levels/{level.pk}/")
    assert page.locator('[data-cells="mon"] .wg-cell.on').count() == 8
    screenshot(page, "rules-04-phone-level-editor")
    page.goto(f"/people/{cleo.pk}/")
    screenshot(page, "rules-05-phone-person")
