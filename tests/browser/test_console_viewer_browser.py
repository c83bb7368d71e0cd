"""Seeing faces: a snapshot opens large in a lightbox with its face boxes; a photo with several faces shows
large numbers on the faces and matching number buttons, with the person's enrolled photos beside it; the log
loads server-made thumbnails. Screenshots: console2-lightbox-*, console2-face-pick-*."""

from __future__ import annotations

import io

import pytest
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

from .conftest import log_in, screenshot
from .console_world import make_user, small_world

pytestmark = [pytest.mark.django_db(transaction=True)]


def picture(size=(640, 480), faces=((200, 100, 400, 340),)) -> bytes:
    img = Image.new("RGB", size, (70, 90, 120))
    draw = ImageDraw.Draw(img)
    for box in faces:
        draw.ellipse(box, fill=(225, 190, 160))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def test_lightbox_numbered_faces_and_thumbnails(page, live_server, django_user_model, settings, tmp_path):
    from enrollment.models import FaceImage

    settings.MEDIA_ROOT = tmp_path / "media"
    world = small_world()
    world.event.snapshot.save("door.jpg", ContentFile(picture()))
    person = world.person
    enrolled = FaceImage.objects.create(person=person, status="enrolled", width=640, height=480,
                                        box=[200, 100, 400, 340], original_name="ada.jpg")
    enrolled.image.save("ada.jpg", ContentFile(picture()))
    two = [(60, 120, 260, 360), (380, 120, 580, 360)]
    group = FaceImage.objects.create(person=person, status="several_faces", width=640, height=480,
                                     original_name="group.jpg", reason="2 usable faces found and none dominates",
                                     candidates=[{"index": i, "box": list(b), "usable": True} for i, b in
                                                 enumerate(two)])
    group.image.save("group.jpg", ContentFile(picture(faces=two)))
    operator = make_user(django_user_model, "operator")
    log_in(page, operator.username, "pw-browser-1")

    page.goto("/events/")
    thumb = page.locator(f"img[src='/events/{world.event.pk}/thumb/']")
    assert thumb.count() == 1 and page.evaluate("(img) => img.naturalWidth", thumb.element_handle()) == 160

    page.goto(f"/events/{world.event.pk}/")
    page.click("a.shot")
    page.wait_for_selector("dialog.lightbox[open] img")
    page.wait_for_function("() => document.querySelector('dialog.lightbox img').naturalWidth === 640")
    assert page.locator("dialog.lightbox svg polygon").count() == 1
    screenshot(page, "console2-lightbox-1366")
    page.keyboard.press("Escape")
    assert page.locator("dialog.lightbox[open]").count() == 0

    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"/people/{person.pk}/")
        card = page.locator(f"[data-face='{group.pk}']")
        assert card.locator("svg text").all_text_contents() == ["1", "2"]
        assert card.locator("[data-choose] .pick-number").all_inner_texts() == ["1", "2"]
        assert "POST /api" not in card.inner_text() and "pick the right one by its number" in card.inner_text()
        assert card.locator("[data-enrolled-beside]").count() == 1
        screenshot(page, f"console2-face-pick-{width}")
