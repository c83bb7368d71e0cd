"""A small console world for browser tests that need no engine: a site, a camera, people, decided events of
every kind and a few audit entries."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass


@dataclass
class World:
    site: object
    camera: object
    person: object
    event: object


def make_user(django_user_model, role: str):
    from faceaccess import roles

    user = django_user_model.objects.create_user(f"{role}-{uuid.uuid4().hex[:6]}", password="pw-browser-1")
    roles.set_role(user, role)
    return user


def small_world() -> World:
    from access.models import AccessEvent, AccessEventFace, Camera, Site
    from enrollment.models import Person

    site = Site.objects.create(name="HQ", match_threshold=0.9)
    camera = Camera(site=site, name="front door")
    camera.set_new_key()
    camera.save()
    ada = Person.objects.create(name="Ada Lovelace", external_id="E-1")
    ada.sites.add(site)
    Person.objects.create(name="Grace Hopper")
    event = None
    for i, decision in enumerate(("granted", "denied", "unknown", "no_face")):
        person = ada if decision in ("granted", "denied") else None
        when = dt.datetime(2026, 5, 1, 10, i, tzinfo=dt.UTC)
        e = AccessEvent.objects.create(camera=camera, site=site, received_at=when,
                                       status="done", decision=decision, person=person, image_width=640,
                                       image_height=480, reason=f"{decision} at the front door", threshold=0.9)
        if decision != "no_face":
            AccessEventFace.objects.create(event=e, index=0, decision=decision, box=[200, 100, 400, 340],
                                           nearest_person=person, distance=0.5 if person else 1.3)
        event = event or e
    return World(site, camera, ada, event)


def main_pages(world: World) -> list[str]:
    return ["/", "/people/", f"/people/{world.person.pk}/", "/events/", f"/events/{world.event.pk}/",
            "/strangers/", "/sites/", f"/sites/{world.site.pk}/threshold/", "/models/", "/activity/",
            f"/cameras/{world.camera.pk}/edit/", "/people/new/"]
