"""The console sends a strict Content-Security-Policy, and no console page carries inline script, inline style
or an inline event handler (the policy would block them: the page would break). Every console URL is visited,
its ids filled with real rows, as an admin."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import URLPattern

from access.models import AccessEvent, AccessEventFace
from console import urls as console_urls
from enrollment.models import FaceImage

from .conftest import image_bytes, make_person, unit

pytestmark = pytest.mark.django_db

POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
          "base-uri 'self'; frame-ancestors 'none'; form-action 'self'")


def directives(policy: str) -> dict[str, str]:
    return dict((d.strip().split(" ", 1) + [""])[:2] for d in policy.split(";") if d.strip())


class InlineFinder(HTMLParser):
    """Collects what a strict CSP blocks: style attributes, on* handlers, <style> blocks, inline <script>,
    javascript: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.found.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")
        if tag == "style":
            self.found.append("<style> block")
        if tag == "script" and not dict(attrs).get("src"):
            self.found.append("inline <script>")


def inline_parts(html: str) -> list[str]:
    finder = InlineFinder()
    finder.feed(html)
    return finder.found


def test_the_finder_sees_what_the_policy_blocks():
    assert inline_parts('<div style="color:red"></div><form onsubmit="x()"></form><style>p{}</style>'
                        "<script>alert(1)</script><a href='javascript:void(0)'>x</a>") == [
        "<div style='color:red'>", "<form onsubmit='x()'>", "<style> block", "inline <script>",
        "<a href='javascript:void(0)'>"]
    assert inline_parts('<script src="/static/x.js"></script><p class="a">ok</p>') == []


def _fill(route: str, ids: dict[str, int]) -> str | None:
    """A concrete URL for a console route, its ids taken from the rows made for the test (None: unknown id)."""
    first = route.split("/", 1)[0]
    if "<" not in route:
        return "/" + route
    if first not in ids:
        return None
    return "/" + re.sub(r"<(?:int:)?\w+>", str(ids[first]), route)


def test_every_console_page_has_no_inline_script_style_or_handler(staff, site, camera, media):
    alice = make_person("Alice", sites=[site])
    (media / "faces").mkdir(parents=True, exist_ok=True)
    (media / "faces" / "a.png").write_bytes(image_bytes())
    photo = FaceImage.objects.create(person=alice, image="faces/a.png", status="several_faces", width=200,
                                     height=100, candidates=[{"index": i, "box": [10 + 90 * i, 10, 90 + 90 * i, 90],
                                                              "usable": True} for i in range(2)])
    event = AccessEvent.objects.create(camera=camera.camera, site=site, received_at="2026-05-01T10:00:00Z",
                                       status="done", decision="granted", person=alice, image_width=640,
                                       image_height=480)
    AccessEventFace.objects.create(event=event, index=0, decision="granted", box=[0, 0, 10, 10],
                                   nearest_person=alice, distance=0.5, embedding=[float(x) for x in unit(1)])
    ids = {"people": alice.pk, "photos": photo.pk, "sites": site.pk, "cameras": camera.camera.pk,
           "events": event.pk}
    client = Client()
    client.force_login(staff.admin)
    pages: dict[str, str] = {}
    for pattern in console_urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        url = _fill(str(pattern.pattern), ids)
        if url is None:
            continue
        response = client.get(url)
        if response.status_code == 200 and response["Content-Type"].startswith("text/html"):
            pages[url] = response.content.decode()
            assert directives(response["Content-Security-Policy"]) == directives(POLICY), url
    # Pages only a POST shows (a camera's key, a rotated secret), the error pages and the login page.
    pages["key page"] = client.post(f"/cameras/{camera.camera.pk}/rotate/").content.decode()
    pages["secret page"] = client.post(f"/cameras/{camera.camera.pk}/rotate-secret/").content.decode()
    pages["404"] = client.get("/no-such-page/").content.decode()
    pages["login"] = Client().get("/login/").content.decode()
    norole = Client()
    norole.force_login(staff.norole)
    pages["403"] = norole.get("/people/").content.decode()
    assert len(pages) >= 24, sorted(pages)
    for url, html in pages.items():
        assert inline_parts(html) == [], url


def test_the_policy_leaves_the_admin_and_the_api_docs_alone(staff):
    client = Client()
    client.force_login(staff.admin)
    assert "Content-Security-Policy" not in client.get("/api/v1/sites/")
    assert "Content-Security-Policy" in client.get("/login/")
