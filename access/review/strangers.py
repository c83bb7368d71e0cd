"""Strangers: faces answered "unknown" that keep coming back, grouped by similarity, to enroll as a new
person in one go or to dismiss."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from enrollment.models import Person
from recognition.pipelines import current_embedder_name

from ..models import AccessEventFace, EventReview, Site
from ..thresholds import strictest_threshold
from .reviews import enroll_event_face

MAX_FACES = 2000  # the most recent unknown faces considered


@dataclass
class StrangerGroup:
    faces: list[AccessEventFace] = field(default_factory=list)
    centroid: np.ndarray | None = None

    @property
    def first_seen(self) -> dt.datetime:
        return min(f.event.received_at for f in self.faces)

    @property
    def last_seen(self) -> dt.datetime:
        return max(f.event.received_at for f in self.faces)

    @property
    def cameras(self) -> list[str]:
        return sorted({f.event.camera.name for f in self.faces if f.event.camera})

    @property
    def face_ids(self) -> list[int]:
        return [f.pk for f in self.faces]


def unknown_faces(days: int = 7):
    """Unknown faces not yet handled, less those a reviewer has named ("this is <person>"): they are no
    strangers any more."""
    since = timezone.now() - dt.timedelta(days=days)
    named = EventReview.objects.filter(event_id=OuterRef("event_id"), verdict=EventReview.Verdict.IS_PERSON).filter(
        Q(face_index=OuterRef("index")) | Q(face_index__isnull=True))
    return (AccessEventFace.objects.filter(decision="unknown", embedding__isnull=False, handled_at__isnull=True,
                                           event__received_at__gte=since,
                                           event__model_name=current_embedder_name())
            .exclude(Exists(named))
            .select_related("event", "event__camera").order_by("-event__received_at")[:MAX_FACES])


def group_strangers(days: int = 7, min_count: int = 2, link: float | None = None) -> list[StrangerGroup]:
    """Greedy grouping: each face joins the group whose mean face is within ``link`` (default: the strictest
    site threshold, else the current model's own), else starts a group. Groups seen at least ``min_count``
    times, most frequent first."""
    if link is None:
        link = strictest_threshold(Site.objects.all())
    groups: list[StrangerGroup] = []
    for face in unknown_faces(days):
        vec = np.asarray(face.embedding, np.float32)
        best, best_d = None, link
        for g in groups:
            d = float(np.linalg.norm(g.centroid - vec))
            if d <= best_d:
                best, best_d = g, d
        if best is None:
            groups.append(StrangerGroup([face], vec))
        else:
            best.faces.append(face)
            mean = np.mean([np.asarray(f.embedding, np.float32) for f in best.faces], axis=0)
            best.centroid = mean / (np.linalg.norm(mean) or 1.0)
    found = [g for g in groups if len(g.faces) >= min_count]
    return sorted(found, key=lambda g: (-len(g.faces), -g.last_seen.timestamp()))


@transaction.atomic
def enroll_strangers(face_ids: list[int], name: str, site: Site | None = None) -> Person:
    """A new person from these faces (each face's snapshot becomes an enrolled photo with its embedding)."""
    faces = list(AccessEventFace.objects.select_related("event").filter(pk__in=face_ids, embedding__isnull=False))
    if not faces:
        raise ValueError("none of these faces can be enrolled (gone, or without an embedding)")
    if not name.strip():
        raise ValueError("give the new person a name")
    person = Person.objects.create(name=name.strip())
    if site is not None:
        person.sites.add(site)
    for face in faces:
        if face.event.snapshot:
            enroll_event_face(face, person)
    AccessEventFace.objects.filter(pk__in=[f.pk for f in faces]).update(handled_at=timezone.now())
    return person


def dismiss_strangers(face_ids: list[int]) -> int:
    return AccessEventFace.objects.filter(pk__in=face_ids, handled_at__isnull=True).update(handled_at=timezone.now())
