"""Reviews of the access log: confirm a decision, say who a face is (and optionally enroll it), or say it is
*not* the matched person (kept as an impostor example for them)."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from enrollment.adopt import enroll_known_face
from enrollment.models import FaceImage, Person

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


UNDO_WINDOW_S = 600  # a reviewer may take back their own review for ten minutes (a misclick, not a rethink)


@transaction.atomic
def undo_review(review: EventReview, user, is_admin: bool = False) -> None:
    """Take back ``review``: by its reviewer within ``UNDO_WINDOW_S``, or by an admin. A "not X" review also
    drops the impostor example it created, and an "is X, add to their photos" review the photo it added (with its
    embedding and files). The review's deletion is in the audit trail (EventReview is registered)."""
    from django.utils import timezone

    if not is_admin:
        if review.reviewer_id != getattr(user, "pk", None):
            raise ReviewError("only the reviewer (or an admin) may take a review back")
        if (timezone.now() - review.created_at).total_seconds() > UNDO_WINDOW_S:
            raise ReviewError(f"a review can be taken back within {UNDO_WINDOW_S // 60} minutes; ask an admin")
    if review.verdict == EventReview.Verdict.NOT_PERSON:
        ImpostorExample.objects.filter(person_id=review.person_id, event_face__event_id=review.event_id,
                                       event_face__index=review.face_index).delete()
    if review.verdict == EventReview.Verdict.IS_PERSON and review.added_to_enrollment:
        # enroll_event_face names the photo after its event; only one made since the review (not an older one).
        FaceImage.objects.filter(person_id=review.person_id, original_name=f"event {review.event_id}",
                                 uploaded_at__gte=review.created_at - dt.timedelta(seconds=5)).delete()
    review.delete()
