"""Review actions on the access log, and the strangers page."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from access.models import AccessEvent, EventReview, Site
from access.review import reviews, strangers
from access.review.reviews import ReviewError, review
from enrollment.models import Person
from faceaccess import roles

from .base import role_required


def _int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


@require_POST
@role_required(roles.EDITORS)
def review_event(request, pk: int):
    event = get_object_or_404(AccessEvent, pk=pk)
    person_pk = _int(request.POST.get("person"))
    person = Person.objects.filter(pk=person_pk).first() if person_pk else None
    try:
        done = review(event, request.POST.get("verdict", ""), request.user, _int(request.POST.get("face")),
                      person, request.POST.get("add_to_enrollment") == "on", request.POST.get("note", ""))
    except ReviewError as exc:
        messages.error(request, f"Not recorded: {exc}.")
    else:
        what = {"confirmed": "Decision confirmed.",
                "is_person": f"Recorded: this is {done.person}." + (" The face was added to their photos."
                                                                     if done.added_to_enrollment else ""),
                "not_person": f"Recorded: this is not {done.person}. A face this close will no longer be let in "
                              f"as {done.person}."}[done.verdict]
        messages.success(request, what)
        following = next_unreviewed(event)
        if request.POST.get("then") == "next" and following is not None:
            return redirect("console:event", following.pk)
    return redirect("console:event", event.pk)


@require_POST
@role_required(roles.EDITORS)
def undo_review(request, pk: int, review_pk: int):
    review_row = get_object_or_404(EventReview, pk=review_pk, event_id=pk)
    try:
        reviews.undo_review(review_row, request.user, is_admin=roles.role_of(request.user) == roles.ADMIN)
    except ReviewError as exc:
        messages.error(request, f"Not taken back: {exc}.")
    else:
        messages.success(request, "Review taken back.")
    return redirect("console:event", pk)


def next_unreviewed(event: AccessEvent) -> AccessEvent | None:
    """The next older decided event nobody reviewed, of the kinds a reviewer looks at (denied, unknown)."""
    return (AccessEvent.objects.filter(status=AccessEvent.Status.DONE, decision__in=("denied", "unknown"),
                                       reviews__isnull=True, received_at__lte=event.received_at)
            .exclude(pk=event.pk).order_by("-received_at", "-id").first())


@role_required()
def stranger_list(request):
    days = _int(request.GET.get("days")) or 7
    groups = strangers.group_strangers(days=days)
    return render(request, "console/strangers.html", {"groups": groups, "days": days, "sites": Site.objects.all()})


@require_POST
@role_required(roles.EDITORS)
def stranger_action(request):
    face_ids = [int(v) for v in request.POST.getlist("face") if v.isdigit()]
    if request.POST.get("action") == "dismiss":
        n = strangers.dismiss_strangers(face_ids)
        messages.success(request, f"Dismissed {n} face{'s' * (n != 1)}.")
        return redirect("console:strangers")
    site_pk = _int(request.POST.get("site"))
    site = Site.objects.filter(pk=site_pk).first() if site_pk else None
    name = request.POST.get("name", "").strip()
    same = Person.objects.filter(name__iexact=name).first() if name else None
    if same is not None and request.POST.get("same_name") != "ok":
        # Likely the same person enrolled twice: say so, and let the reviewer confirm it is someone else.
        messages.error(request, f"Not enrolled: {same.name} already exists. Add these faces to their photos from "
                                "an event's review, or tick 'a different person with the same name'.")
        return redirect("console:strangers")
    try:
        person = strangers.enroll_strangers(face_ids, request.POST.get("name", ""), site)
    except ValueError as exc:
        messages.error(request, f"Not enrolled: {exc}.")
        return redirect("console:strangers")
    messages.success(request, f"{person.name} enrolled from {len(face_ids)} door photos.")
    return redirect("console:person", person.pk)
