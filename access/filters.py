"""The access log's filters, one FilterSet for the console (and the API as it moves onto it)."""

from __future__ import annotations

import django_filters
from django import forms

from enrollment.models import Person

from . import decisions
from .models import AccessEvent, Camera, Site


class EventFilter(django_filters.FilterSet):
    site = django_filters.ModelChoiceFilter(queryset=Site.objects.all(), empty_label="any site")
    camera = django_filters.ModelChoiceFilter(queryset=Camera.objects.select_related("site"),
                                              empty_label="any camera")
    decision = django_filters.ChoiceFilter(choices=[(d, d.replace("_", " ")) for d in decisions.EVENT_DECISIONS],
                                           empty_label="any decision")
    person = django_filters.ModelChoiceFilter(queryset=Person.objects.all(), empty_label="anyone")
    since = django_filters.DateFilter(field_name="received_at", lookup_expr="date__gte", label="From",
                                      widget=forms.DateInput(attrs={"type": "date"}))
    until = django_filters.DateFilter(field_name="received_at", lookup_expr="date__lte", label="To",
                                      widget=forms.DateInput(attrs={"type": "date"}))

    class Meta:
        model = AccessEvent
        fields = ["site", "camera", "decision", "person", "since", "until"]
