"""Erasing a person: their photos, embeddings and impostor examples go with the row; the access log keeps
its events but names nobody (reasons hold person tokens, see access.naming), and the audit trail's
entries about them go too. "With their access history" also removes the snapshots in which they were the
matched person and the face embeddings taken from them."""

from __future__ import annotations

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q

from enrollment.models import Person
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
    pk = person.pk
    person.delete()
    # auditlog wrote the person's fields (their name) on every change and on this deletion: drop them.
    LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Person), object_pk=str(pk)).delete()
    return counts
