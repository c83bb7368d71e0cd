"""The access decision as a pure function of plain data.

The live worker and a what-if replay (another threshold, another allow-list,
the same stored faces) call :func:`decide` with the same inputs and get the
same answer: nothing here touches the database, the clock or the engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .rules import factors, schedule
from .rules.factors import NO_CREDENTIAL, CredentialCheck

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
OUTSIDE_SCHEDULE = "outside_schedule"  # only access levels apply to this door and none of them allows it now
PIN_MISSING, PIN_WRONG, PIN_LOCKED = "pin_missing", "pin_wrong", "pin_locked"  # face + PIN doors
CARD_MISSING, CARD_UNKNOWN, CARD_MISMATCH = "card_missing", "card_unknown", "card_mismatch"  # card doors
REASON_CODES = (PRESENTATION_ATTACK, LIVENESS_UNCHECKED, OUTSIDE_SCHEDULE, PIN_MISSING, PIN_WRONG, PIN_LOCKED,
                CARD_MISSING, CARD_UNKNOWN, CARD_MISMATCH)


@dataclass(frozen=True)
class SiteRules:
    site_id: int | None
    threshold: float  # Euclidean distance at or under which a face is accepted as a person
    min_face_px: float
    min_detection_score: float
    liveness_policy: str = LIVENESS_OFF
    liveness_threshold: float = 0.0  # a live score under it is an attack (enforce) or suspected (monitor)
    # Access rules (access.rules): the door's time zone, the site's holidays, its second factor.
    timezone: str = "UTC"
    holidays: frozenset[dt.date] = frozenset()
    verification: str = factors.FACE

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
    verification: str = ""  # "": the site's; otherwise this door's own (access.rules.factors.MODES)

    def mode(self, site: SiteRules) -> str:
        return self.verification or site.verification


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
    # The access levels granted to the person (directly or through a group), each naming its doors.
    levels: tuple[schedule.Level, ...] = ()

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
    return admission(person, site, camera, now)[0]


def admission(person: PersonFacts, site: SiteRules, camera: CameraRules, now: dt.datetime,
              local: dt.datetime | None = None) -> tuple[str | None, str, str]:
    """(why not or None, the reason code, the access level that lets in or ""). A grant of the site lets in at
    any time within its validity; otherwise the person's access levels for this door (the site or this camera)
    decide by their schedules in the door's local time (``local``, computed from ``now`` when not given)."""
    if not person.active:
        return f"{person.name} is inactive", "", ""
    if person.valid_from is not None and now < person.valid_from:
        return f"{person.name} is valid only from {person.valid_from.isoformat()}", "", ""
    if person.valid_until is not None and now > person.valid_until:
        return f"{person.name}'s validity ended {person.valid_until.isoformat()}", "", ""
    level_name = ""
    if site.site_id is not None:
        grant = person.grant_for(site.site_id)
        grant_ok = grant is not None and (grant.valid_from is None or now >= grant.valid_from) and (
            grant.valid_until is None or now <= grant.valid_until)
        levels = [lv for lv in person.levels if lv.applies_to(site.site_id, camera.camera_id)] if not grant_ok else []
        if levels:
            verdict = schedule.check(levels, local or schedule.local_time(now, site.timezone), site.holidays)
            if not verdict.allowed:
                return verdict.reason, OUTSIDE_SCHEDULE, ""
            level_name = verdict.level.name if verdict.level is not None else ""
        elif grant is None:
            return f"{person.name} does not belong to this site", "", ""
        elif grant.valid_from is not None and now < grant.valid_from:
            return f"{person.name} may enter this site only from {grant.valid_from.isoformat()}", "", ""
        elif grant.valid_until is not None and now > grant.valid_until:
            return f"{person.name}'s access to this site ended {grant.valid_until.isoformat()}", "", ""
    if camera.allowed_people and person.person_id not in camera.allowed_people:
        return f"{person.name} is not on this camera's allow-list", "", ""
    return None, "", level_name


def second_factor(person: PersonFacts, mode: str, credential: CredentialCheck) -> tuple[str, str] | None:
    """(why not, reason code) when the door's second factor refuses ``person``, else None."""
    if mode == factors.FACE_PIN:
        pin = credential.pin_for(person.person_id)
        if pin == factors.PIN_MISSING:
            return "PIN required", PIN_MISSING
        if pin == factors.PIN_UNSET:
            return f"{person.name} has no PIN", PIN_WRONG
        if pin == factors.PIN_LOCKED:
            return f"{person.name}'s PIN is locked after too many wrong PINs", PIN_LOCKED
        if pin != factors.PIN_OK:
            return f"the PIN is wrong for {person.name}", PIN_WRONG
    elif mode == factors.FACE_CARD:
        if not credential.has_card:
            return "card required", CARD_MISSING
        if credential.card_person_id is None:
            return f"card …{credential.card_last4} is unknown", CARD_UNKNOWN
        if credential.card_person_id != person.person_id:
            return f"card …{credential.card_last4} belongs to someone else", CARD_MISMATCH
    return None


def decide_face(
    face: FaceInput, site: SiteRules, camera: CameraRules, people: Mapping[int, PersonFacts], now: dt.datetime,
    credential: CredentialCheck = NO_CREDENTIAL, local: dt.datetime | None = None,
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
    why_not, code, level = admission(person, site, camera, now, local)
    if why_not:
        return FaceOutcome(DENIED, person.person_id, f"matched {person.name} at {face.distance:.3f} but {why_not}",
                           code)
    if site.liveness_policy == LIVENESS_ENFORCE:
        if face.liveness is None:
            return FaceOutcome(DENIED, person.person_id, f"matched {person.name} at {face.distance:.3f} but "
                               "liveness could not be checked", LIVENESS_UNCHECKED)
        if face.liveness < site.liveness_threshold:
            return FaceOutcome(DENIED, person.person_id, f"matched {person.name} at {face.distance:.3f} but "
                               f"presentation attack suspected: live {face.liveness:.3f} < "
                               f"{site.liveness_threshold:.3f}", PRESENTATION_ATTACK)
    refused = second_factor(person, camera.mode(site), credential)
    if refused is not None:
        return FaceOutcome(DENIED, person.person_id, f"matched {person.name} at {face.distance:.3f} but "
                           f"{refused[0]}", refused[1])
    return FaceOutcome(
        GRANTED, person.person_id, f"matched {person.name} at {face.distance:.3f} <= {site.threshold:.3f}"
        + (f" ({level})" if level else "") + _factor_note(camera.mode(site), credential)
    )


def _factor_note(mode: str, credential: CredentialCheck) -> str:
    if mode == factors.FACE_PIN:
        return ", PIN ok"
    if mode == factors.FACE_CARD:
        return f", card …{credential.card_last4}"
    return ""


def decide_card(site: SiteRules, camera: CameraRules, people: Mapping[int, PersonFacts], now: dt.datetime,
                credential: CredentialCheck, local: dt.datetime | None = None) -> Outcome:
    """A card alone, on a "card or face" door: granted when its holder may pass here now."""
    card = f"card …{credential.card_last4}"
    person = people.get(credential.card_person_id) if credential.card_person_id is not None else None
    if person is None:
        return Outcome(UNKNOWN, None, f"{card} is unknown", (), CARD_UNKNOWN)
    why_not, code, level = admission(person, site, camera, now, local)
    if why_not:
        return Outcome(DENIED, person.person_id, f"{card} of {person.name} but {why_not}", (), code)
    return Outcome(GRANTED, person.person_id, f"{card} of {person.name}" + (f" ({level})" if level else ""), ())


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
    credential: CredentialCheck = NO_CREDENTIAL,
) -> Outcome:
    """Granted when a usable face matches a person allowed here; denied when the best match is a person
    not allowed here; unknown when usable faces match nobody; no_face when no face is usable.

    Access rules: ``people`` carry their grants and access levels, judged in the door's local time (``site``'s
    zone and holidays); the door's second factor (``camera.mode(site)``) needs ``credential`` to name the same
    person as the face. On a "card or face" door a card lets its holder in without a matching face."""
    local = schedule.local_time(now, site.timezone)
    outcome = _decide_faces(faces, site, camera, people, now, credential, local)
    if camera.mode(site) == factors.CARD_OR_FACE and credential.has_card and outcome.decision != GRANTED:
        by_card = decide_card(site, camera, people, now, credential, local)
        if by_card.decision == GRANTED or outcome.decision in (NO_FACE, UNKNOWN):
            return Outcome(by_card.decision, by_card.person_id, by_card.reason, outcome.faces, by_card.code)
    return outcome


def _decide_faces(faces: Sequence[FaceInput], site: SiteRules, camera: CameraRules,
                  people: Mapping[int, PersonFacts], now: dt.datetime, credential: CredentialCheck,
                  local: dt.datetime) -> Outcome:
    outcomes = tuple(decide_face(f, site, camera, people, now, credential, local) for f in faces)
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
