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

# A site's liveness policy: off (not scored), monitor (scored and recorded, the decision unchanged), enforce (a
# face under the liveness threshold is never granted).
LIVENESS_OFF, LIVENESS_MONITOR, LIVENESS_ENFORCE = "off", "monitor", "enforce"
LIVENESS_POLICIES = (LIVENESS_OFF, LIVENESS_MONITOR, LIVENESS_ENFORCE)
# Reason codes: a decision's cause in one stable word, for the log's filters ("" for every other decision).
PRESENTATION_ATTACK = "presentation_attack"  # enforce: the matched face scored under the liveness threshold
LIVENESS_UNCHECKED = "liveness_unchecked"  # enforce: the matched face has no live score (yet, or could not get one)
REASON_CODES = (PRESENTATION_ATTACK, LIVENESS_UNCHECKED)


@dataclass(frozen=True)
class SiteRules:
    site_id: int | None
    threshold: float  # Euclidean distance at or under which a face is accepted as a person
    min_face_px: float
    min_detection_score: float
    liveness_policy: str = LIVENESS_OFF
    liveness_threshold: float = 0.0  # a live score under it is an attack (enforce) or suspected (monitor)

    def suspected(self, liveness: float | None) -> bool:
        """Whether a live score says "a print or a screen" at this site (scored and under the threshold)."""
        return self.liveness_policy != LIVENESS_OFF and suspected(liveness, self.liveness_threshold)


def suspected(liveness: float | None, threshold: float | None) -> bool:
    """A live score under the liveness threshold it was judged by: a print or a screen (refused under enforce,
    only marked under monitor). Unscored is not suspected."""
    return liveness is not None and threshold is not None and liveness < threshold


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
    liveness: float | None = None  # live score 0..1; None: not scored (only a face about to be let in is)


@dataclass(frozen=True)
class FaceOutcome:
    decision: str  # granted | denied | unknown | ignored
    person_id: int | None  # the person the face was accepted as (granted or denied)
    reason: str
    code: str = ""  # one of REASON_CODES, or ""


@dataclass(frozen=True)
class Outcome:
    decision: str  # granted | denied | unknown | no_face
    person_id: int | None
    reason: str
    faces: tuple[FaceOutcome, ...]
    code: str = ""  # the deciding face's reason code


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
    if site.liveness_policy == LIVENESS_ENFORCE:
        if face.liveness is None:
            return FaceOutcome(DENIED, person.person_id, f"matched {person.name} at {face.distance:.3f} but "
                               "liveness could not be checked", LIVENESS_UNCHECKED)
        if face.liveness < site.liveness_threshold:
            return FaceOutcome(DENIED, person.person_id, f"matched {person.name} at {face.distance:.3f} but "
                               f"presentation attack suspected: live {face.liveness:.3f} < "
                               f"{site.liveness_threshold:.3f}", PRESENTATION_ATTACK)
    return FaceOutcome(
        GRANTED, person.person_id, f"matched {person.name} at {face.distance:.3f} <= {site.threshold:.3f}"
    )


def liveness_candidate(faces: Sequence[FaceInput], site: SiteRules, outcome: Outcome) -> int | None:
    """The face whose live score the decision still needs: under ``monitor`` the granted face, under ``enforce``
    the nearest face that would be granted but for its missing score; None when nothing needs scoring. Only the
    face that would let somebody in is ever scored, so strangers and empty frames cost nothing."""
    if site.liveness_policy == LIVENESS_MONITOR:  # only the face that decided: the one that let somebody in
        granted = [i for i, o in enumerate(outcome.faces) if o.decision == GRANTED]
        best = min(granted, key=lambda i: faces[i].distance) if granted else None
        return best if best is not None and faces[best].liveness is None else None
    if site.liveness_policy == LIVENESS_ENFORCE:  # the nearest one waiting; once it is scored, the next if any
        waiting = [i for i, o in enumerate(outcome.faces) if o.code == LIVENESS_UNCHECKED and faces[i].liveness is None]
        return min(waiting, key=lambda i: faces[i].distance) if waiting else None
    return None


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
            return Outcome(wanted, best.person_id, best.reason, outcomes, best.code)
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
