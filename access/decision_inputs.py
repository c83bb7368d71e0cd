"""The decision's inputs from stored rows: what :func:`access.decisions.decide` needs to know of people,
sites, cameras and recorded faces.

Beside the pure decision function so that the worker (a live decision) and the review tools (a what-if
replay of stored events at another threshold) build the same inputs the same way.
"""

from __future__ import annotations

import dataclasses

from enrollment.models import Person

from . import decisions
from .models import AccessEvent, Camera, Site
from .naming import person_token
from .rules import factors, loading
from .thresholds import current_threshold, threshold_for


def person_facts(person_ids: set[int], names: bool = False, site_id: int | None = None
                 ) -> dict[int, decisions.PersonFacts]:
    """What the decision needs to know of these people: their grants and access levels (only the levels with a
    door at ``site_id`` when given). Their names are tokens (rendered when read, see access.naming) unless
    ``names``: reasons stored in the log must not name anybody."""
    people = Person.objects.filter(pk__in=person_ids).prefetch_related("grants")
    levels = loading.levels_for(set(person_ids), site_id)
    return {
        p.pk: decisions.PersonFacts(
            p.pk, p.name if names else person_token(p.pk), p.active, p.valid_from, p.valid_until,
            tuple(decisions.Grant(g.site_id, g.valid_from, g.valid_until) for g in p.grants.all()),
            levels.get(p.pk, ()),
        )
        for p in people
    }


def recorded_faces(event: AccessEvent) -> list[decisions.FaceInput]:
    """The decision inputs stored with an event, so a replay (another threshold...) needs no engine."""
    return [
        decisions.FaceInput(f.score, f.size_px or 0.0, f.nearest_person_id, f.distance, f.runner_up_distance,
                            f.impostor_distance, f.liveness)
        for f in event.faces.order_by("index")
    ]


def site_rules(site: Site, model: str | None = None, holidays: bool = True) -> decisions.SiteRules:
    """The site's rules for faces embedded by ``model`` (default: the active one); without its holidays when not
    ``holidays`` (the worker reads them only when a candidate has access levels: see :func:`with_holidays`)."""
    threshold = current_threshold(site) if model is None else threshold_for(site, model)
    return decisions.SiteRules(site.pk, threshold, site.min_face_px, site.min_detection_score,
                               site.liveness_policy, site.liveness_threshold, site.timezone,
                               loading.holidays_of(site.pk) if holidays else frozenset(), site.verification)


def with_holidays(site: decisions.SiteRules, people: dict[int, decisions.PersonFacts]) -> decisions.SiteRules:
    """``site`` with its holidays when one of ``people`` has an access level (holidays only close levels; a plain
    grant lets in on any day), so a site without levels pays no query for them."""
    if any(p.levels for p in people.values()):
        return dataclasses.replace(site, holidays=loading.holidays_of(site.site_id))
    return site


def recorded_site_rules(event: AccessEvent, site: Site, threshold: float) -> decisions.SiteRules:
    """The rules an event was decided with (stored on it; the site's own where an old event lacks them), at
    ``threshold`` (a what-if candidate)."""
    def stored(value, default):
        return default if value is None or value == "" else value

    return decisions.SiteRules(
        site.pk, threshold, stored(event.min_face_px, site.min_face_px),
        stored(event.min_detection_score, site.min_detection_score),
        stored(event.liveness_policy, decisions.LIVENESS_OFF), stored(event.liveness_threshold, 0.0),
        site.timezone, loading.holidays_of(site.pk), stored(event.verification, factors.FACE))


def recorded_credential(event: AccessEvent) -> factors.CredentialCheck:
    """The credential check stored with an event (outcomes only), so a replay decides with it again."""
    return factors.CredentialCheck.from_stored(event.credential)


def camera_rules(camera: Camera | None) -> decisions.CameraRules:
    if camera is None:
        return decisions.CameraRules()
    return decisions.CameraRules(camera.pk, frozenset(camera.allowed_people.values_list("pk", flat=True)),
                                 camera.verification)
