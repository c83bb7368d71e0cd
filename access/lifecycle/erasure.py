"""Erasing a person: their photos, embeddings and impostor examples go with the row; the access log keeps
its events but names nobody (reasons hold person tokens, see access.naming), and the audit trail keeps every
entry about them with their name, badge id, notes and photo names replaced by a placeholder (it is append-only);
the erasure itself is logged, without the name. "With their access history" (admins only) also removes the
snapshots in which they were the matched person and the face embeddings taken from them."""

from __future__ import annotations

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q

from enrollment.models import FaceImage, Person
from faceaccess import audit
from faceaccess.files import delete_file_on_commit

from ..decisions import DENIED, GRANTED
from ..models import AccessEvent, AccessEventFace, EventReview

MATCHED = (GRANTED, DENIED)  # a face taken for this person, let in or not


@transaction.atomic
def erase_person(person: Person, with_history: bool = False) -> dict[str, int]:
    counts = {"photos": person.face_images.count(), "embeddings": person.embeddings.count(), "snapshots": 0}
    if with_history:
        matched = Q(nearest_person=person, decision__in=MATCHED)
        events = AccessEvent.objects.filter(Q(person=person) | Q(faces__in=AccessEventFace.objects.filter(matched)))
        events = events.distinct()
        for event in events.exclude(snapshot=""):
            delete_file_on_commit(event.snapshot)
            counts["snapshots"] += 1
        AccessEvent.objects.filter(pk__in=events.values("pk")).update(snapshot="")
        AccessEventFace.objects.filter(matched).update(embedding=None)
    # Free text written by reviewers: any note about them, or naming them, goes.
    EventReview.objects.filter(Q(person=person) | Q(event__person=person) | Q(note__icontains=person.name)).update(
        note="")
    pk, words = person.pk, [person.name, person.external_id]
    photos = [str(p) for p in person.face_images.values_list("pk", flat=True)]
    person.delete()
    # auditlog wrote the person's fields on every change and on this deletion, and their photos' names: the
    # entries stay (who did what, when), the personal data in them goes.
    about = Q(content_type=ContentType.objects.get_for_model(Person), object_pk=str(pk))
    of_photos = Q(content_type=ContentType.objects.get_for_model(FaceImage), object_pk__in=photos)
    audit.redact_fields(LogEntry.objects.filter(about), {"name", "external_id", "notes"})
    audit.redact_fields(LogEntry.objects.filter(of_photos), {"original_name"})
    audit.redact(words)
    audit.record(Person(pk=pk, name=audit.PLACEHOLDER), "person erased", action=LogEntry.Action.DELETE,
                 with_history=with_history, **counts)
    return counts
