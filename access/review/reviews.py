"""Reviews of the access log: confirm a decision, say who a face is (and optionally enroll it), or say it is
*not* the matched person (kept as an impostor example for them)."""

from __future__ import annotations

from django.db import transaction

from enrollment.adopt import enroll_known_face
from enrollment.models import Person

from ..models import AccessEvent, AccessEventFace, EventReview, ImpostorExample


class ReviewError(ValueError):
    """A review that cannot be recorded as asked; the message says why."""


def reviewed_face(event: AccessEvent, index: int | None) -> AccessEventFace:
    """The face a review is about: ``index``, else the face the decision came from, else the only one."""
    faces = list(event.faces.order_by("index"))
    if not faces:
        raise ReviewError("this event has no face to review")
    if index is not None:
        found = next((f for f in faces if f.index == index), None)
        if found is None:
            raise ReviewError(f"this event has no face {index} (it has {len(faces)})")
        return found
    if event.person_id is not None:
        decided = [f for f in faces if f.nearest_person_id == event.person_id and f.decision in ("granted", "denied")]
        if decided:
            return decided[0]
    return faces[0]


@transaction.atomic
def review(event: AccessEvent, verdict: str, reviewer, face_index: int | None = None,
           person: Person | None = None, add_to_enrollment: bool = False, note: str = "") -> EventReview:
    if event.status != AccessEvent.Status.DONE:
        raise ReviewError(f"only decided events can be reviewed (this one is {event.status})")
    if verdict not in EventReview.Verdict.values:
        raise ReviewError(f"verdict must be one of {', '.join(EventReview.Verdict.values)}")
    face = reviewed_face(event, face_index) if verdict != EventReview.Verdict.CONFIRMED or face_index is not None \
        else None
    added = False
    if verdict == EventReview.Verdict.IS_PERSON:
        if person is None:
            raise ReviewError("say who this is (person)")
        if add_to_enrollment:
            enroll_event_face(face, person)
            added = True
    elif verdict == EventReview.Verdict.NOT_PERSON:
        person = person or (Person.objects.filter(pk=face.nearest_person_id).first() if face else None)
        if person is None:
            raise ReviewError("this face was not matched to anybody: say who it is not (person)")
        if face.embedding is None:
            raise ReviewError("this face has no stored embedding to learn from")
        ImpostorExample.objects.create(person=person, event_face=face, embedding=[float(x) for x in face.embedding],
                                       model_name=event.model_name, model_version=event.model_version,
                                       created_by=reviewer)
    return EventReview.objects.create(
        event=event, face_index=face.index if face else None, verdict=verdict, person=person,
        added_to_enrollment=added, reviewer=reviewer, note=note,
    )


def enroll_event_face(face: AccessEventFace, person: Person) -> None:
    """The face's snapshot becomes an enrolled photo of ``person`` with the face's own embedding."""
    event = face.event
    if face.embedding is None or not event.snapshot:
        raise ReviewError("this face cannot be enrolled: its embedding or the snapshot is no longer stored")
    with event.snapshot.open("rb") as fh:
        data = fh.read()
    extension = event.snapshot.name.rsplit(".", 1)[-1] if "." in event.snapshot.name else "jpg"
    enroll_known_face(person, data, extension, (event.image_width or 0, event.image_height or 0), face.face_fields(),
                      face.embedding, event.model_name, event.model_version, f"event {event.pk}")
