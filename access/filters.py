"""The access log's filters, one FilterSet for the console (and the API as it moves onto it)."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import F, QuerySet

from enrollment.models import Person

from . import decisions
from .models import AccessEvent, Camera, Site

# The log's liveness filter: the deciding face's live score against the threshold the event was decided with.
LIVENESS_CHOICES = [("suspected", "suspected (print or screen)"), ("refused", "refused as an attack"),
                    ("live", "live"), ("unscored", "not scored")]


def by_liveness(queryset: QuerySet, value: str) -> QuerySet:
    if value == "suspected":
        return queryset.filter(liveness__isnull=False, liveness__lt=F("liveness_threshold"))
    if value == "refused":
        return queryset.filter(reason_code=decisions.PRESENTATION_ATTACK)
    if value == "live":
        return queryset.filter(liveness__isnull=False, liveness__gte=F("liveness_threshold"))
    if value == "unscored":
        return queryset.filter(liveness__isnull=True)
    return queryset


def by_review(queryset: QuerySet, value: str) -> QuerySet:
    """``yes``: events someone reviewed; ``no``: decided events nobody has reviewed yet."""
    if value == "yes":
        return queryset.filter(reviews__isnull=False).distinct()
    if value == "no":
        return queryset.filter(status=AccessEvent.Status.DONE, reviews__isnull=True)
    return queryset


class EventFilter(django_filters.FilterSet):
    site = django_filters.ModelChoiceFilter(queryset=Site.objects.all(), empty_label="any site")
    camera = django_filters.ModelChoiceFilter(queryset=Camera.objects.select_related("site"),
                                              empty_label="any camera")
    decision = django_filters.ChoiceFilter(choices=[(d, d.replace("_", " ")) for d in decisions.EVENT_DECISIONS],
                                           empty_label="any decision")
    person = django_filters.ModelChoiceFilter(queryset=Person.objects.all(), empty_label="anyone")
    liveness = django_filters.ChoiceFilter(choices=LIVENESS_CHOICES, empty_label="any liveness",
                                           method=lambda queryset, name, value: by_liveness(queryset, value))
    reviewed = django_filters.ChoiceFilter(choices=[("no", "not reviewed"), ("yes", "reviewed")],
                                           empty_label="reviewed or not",
                                           method=lambda queryset, name, value: by_review(queryset, value))
    since = django_filters.DateFilter(field_name="received_at", lookup_expr="date__gte", label="From",
                                      widget=forms.DateInput(attrs={"type": "date"}))
    until = django_filters.DateFilter(field_name="received_at", lookup_expr="date__lte", label="To",
                                      widget=forms.DateInput(attrs={"type": "date"}))

    class Meta:
        model = AccessEvent
        fields = ["site", "camera", "decision", "person", "liveness", "reviewed", "since", "until"]
