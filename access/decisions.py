"""The access decision as a pure function of plain data.

The live worker and a what-if replay (another threshold, another allow-list,
the same stored faces) call :func:`decide` with the same inputs and get the
same answer: nothing here touches the database, the clock or the engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# The decision words, defined here once (the models' choices are built from these).
GRANTED, DENIED, UNKNOWN, NO_FACE, IGNORED = "granted", "denied", "unknown", "no_face", "ignored"
EVENT_DECISIONS = (GRANTED, DENIED, UNKNOWN, NO_FACE)  # a whole snapshot
FACE_DECISIONS = (GRANTED, DENIED, UNKNOWN, IGNORED)  # one face (ignored: under the site's size or score minimum)


@dataclass(frozen=True)
class SiteRules:
    site_id: int | None
    threshold: float  # Euclidean distance at or under which a face is accepted as a person
    min_face_px: float
    min_detection_score: float


@dataclass(frozen=True)
class CameraRules:
    camera_id: int | None = None
    # None or empty: every allowed person of the site may pass; otherwise only these people.
    allowed_people: frozenset[int] | None = None


@dataclass(frozen=True)
class Grant:
    """The person may enter this site, optionally only within a validity window."""

    site_id: int
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None


@dataclass(frozen=True)
class PersonFacts:
    person_id: int
    name: str
    active: bool
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None
    grants: tuple[Grant, ...] = ()

    def grant_for(self, site_id: int | None) -> Grant | None:
        return next((g for g in self.grants if g.site_id == site_id), None)


@dataclass(frozen=True)
class FaceInput:
    score: float
    size_px: float
    nearest_person_id: int | None = None  # None: no embedding of the current model to compare with
    distance: float | None = None
    runner_up_distance: float | None = None
    # Distance to the nearest face a reviewer marked "not <nearest person>" (None: there is none).
    impostor_distance: float | None = None


@dataclass(frozen=True)
class FaceOutcome:
    decision: str  # granted | denied | unknown | ignored
    person_id: int | None  # the person the face was accepted as (granted or denied)
    reason: str


@dataclass(frozen=True)
class Outcome:
    decision: str  # granted | denied | unknown | no_face
    person_id: int | None
    reason: str
    faces: tuple[FaceOutcome, ...]


def refusal(person: PersonFacts, site: SiteRules, camera: CameraRules, now: dt.datetime) -> str | None:
    """Why ``person`` may not pass this camera at ``now``, or None when they may."""
    if not person.active:
        return f"{person.name} is inactive"
    if person.valid_from is not None and now < person.valid_from:
        return f"{person.name} is valid only from {person.valid_from.isoformat()}"
    if person.valid_until is not None and now > person.valid_until:
        return f"{person.name}'s validity ended {person.valid_until.isoformat()}"
    if site.site_id is not None:
        grant = person.grant_for(site.site_id)
        if grant is None:
            return f"{person.name} does not belong to this site"
        if grant.valid_from is not None and now < grant.valid_from:
            return f"{person.name} may enter this site only from {grant.valid_from.isoformat()}"
        if grant.valid_until is not None and now > grant.valid_until:
            return f"{person.name}'s access to this site ended {grant.valid_until.isoformat()}"
    if camera.allowed_people and person.person_id not in camera.allowed_people:
        return f"{person.name} is not on this camera's allow-list"
    return None


def decide_face(
    face: FaceInput, site: SiteRules, camera: CameraRules, people: Mapping[int, PersonFacts], now: dt.datetime
) -> FaceOutcome:
    if face.size_px < site.min_face_px:
        return FaceOutcome(
            IGNORED, None, f"face is {face.size_px:.0f} px, under the site minimum {site.min_face_px:g} px"
        )
    if face.score < site.min_detection_score:
        return FaceOutcome(
            IGNORED, None, f"detection score {face.score:.2f} is under the site minimum {site.min_detection_score:.2f}"
        )
    if face.nearest_person_id is None or face.distance is None:
        return FaceOutcome(UNKNOWN, None, "nobody is enrolled with the current model")
    if face.distance > site.threshold:
        return FaceOutcome(
            UNKNOWN, None, f"nearest person at {face.distance:.3f}, over the threshold {site.threshold:.3f}"
        )
    person = people.get(face.nearest_person_id)
    if person is None:
        return FaceOutcome(UNKNOWN, None, "the matched person no longer exists")
    if face.impostor_distance is not None and face.impostor_distance <= face.distance:
        return FaceOutcome(
            UNKNOWN, None, f"nearer a face marked 'not {person.name}' ({face.impostor_distance:.3f}) than "
            f"{person.name}'s own photos ({face.distance:.3f})"
        )
    why_not = refusal(person, site, camera, now)
    if why_not:
        return FaceOutcome(DENIED, person.person_id, f"matched {person.name} at {face.distance:.3f} but {why_not}")
    return FaceOutcome(
        GRANTED, person.person_id, f"matched {person.name} at {face.distance:.3f} <= {site.threshold:.3f}"
    )


def decide(
    faces: Sequence[FaceInput],
    site: SiteRules,
    camera: CameraRules,
    people: Mapping[int, PersonFacts],
    now: dt.datetime,
) -> Outcome:
    """Granted when a usable face matches a person allowed here; denied when the best match is a person
    not allowed here; unknown when usable faces match nobody; no_face when no face is usable."""
    outcomes = tuple(decide_face(f, site, camera, people, now) for f in faces)
    if not faces:
        return Outcome(NO_FACE, None, "no face detected", outcomes)
    usable = [(f, o) for f, o in zip(faces, outcomes, strict=True) if o.decision != IGNORED]
    if not usable:
        details = "; ".join(o.reason for o in outcomes)
        n = len(faces)
        return Outcome(NO_FACE, None, f"{n} face{'s' * (n > 1)} detected, none usable: {details}", outcomes)
    for wanted in (GRANTED, DENIED):
        hits = [(f, o) for f, o in usable if o.decision == wanted]
        if hits:
            face, best = min(hits, key=lambda fo: fo[0].distance)
            return Outcome(wanted, best.person_id, best.reason, outcomes)
    # A face within the threshold that is still unknown (a known impostor, a deleted person) says why itself.
    within = [(f, o) for f, o in usable if f.distance is not None and f.distance <= site.threshold]
    if within:
        return Outcome(UNKNOWN, None, min(within, key=lambda fo: fo[0].distance)[1].reason, outcomes)
    nearest = [f.distance for f, _ in usable if f.distance is not None]
    if not nearest:
        return Outcome(UNKNOWN, None, "nobody is enrolled with the current model", outcomes)
    return Outcome(
        UNKNOWN, None, f"no face within the threshold {site.threshold:.3f} (nearest {min(nearest):.3f})", outcomes
    )
