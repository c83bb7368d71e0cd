"""Access rules pages: groups, access levels with a weekly grid editor, holidays per site, and a person's door
credentials (PIN status and lockout, cards). Everyone with a role reads; admins change. The person's "where and
when" table is computed by :mod:`access.entry` (shown on the person's page)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from access.models import Camera, Site
from access.rules import credentials, schedule
from access.rules.models import AccessLevel, Card, Holiday, PersonGroup, PersonPin
from enrollment.models import Person
from faceaccess import roles

from .base import role_required

SLOTS = 48  # the grid's columns: half hours


class GroupForm(forms.ModelForm):
    class Meta:
        model = PersonGroup
        fields = ["name", "description", "members"]
        widgets = {"members": forms.SelectMultiple(attrs={"size": 10}),
                   "description": forms.Textarea(attrs={"rows": 2})}


class LevelForm(forms.ModelForm):
    """The level's fields plus one text field per weekday ("18:00-22:00, 23:00-01:00") that the grid edits."""

    class Meta:
        model = AccessLevel
        fields = ["name", "description", "sites", "cameras", "people", "groups", "holidays_too", "valid_from",
                  "valid_until"]
        widgets = {"sites": forms.CheckboxSelectMultiple, "cameras": forms.SelectMultiple(attrs={"size": 5}),
                   "people": forms.SelectMultiple(attrs={"size": 8}), "groups": forms.CheckboxSelectMultiple,
                   "valid_from": forms.DateInput(attrs={"type": "date"}),
                   "valid_until": forms.DateInput(attrs={"type": "date"}),
                   "description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"sites": "Doors: every camera of these sites.", "cameras": "Doors: single cameras.",
                      "holidays_too": "Also on the site's holidays (otherwise not on them)."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cameras"].queryset = Camera.objects.select_related("site")
        ranges = schedule.parse(self.instance.schedule) if self.instance.pk else ()
        for i, day in enumerate(schedule.DAYS):
            text = ", ".join(r.text() for r in ranges if r.day == i)
            self.fields[f"day_{day}"] = forms.CharField(
                label=schedule.DAY_NAMES[i], required=False, initial=text,
                widget=forms.TextInput(attrs={"data-day": day, "placeholder": "e.g. 18:00-22:00, 23:00-01:00"}))

    def day_fields(self) -> list:
        return [self[f"day_{day}"] for day in schedule.DAYS]

    def other_fields(self) -> list:
        return [f for f in self if not f.name.startswith("day_")]

    def clean(self) -> dict:
        data = super().clean()
        raw: dict[str, list[list[str]]] = {}
        for day in schedule.DAYS:
            text = (data.get(f"day_{day}") or "").strip()
            pairs = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
            bad = [p for p in pairs if p.count("-") != 1]
            if bad:
                self.add_error(f"day_{day}", f"{bad[0]!r}: write a range as 18:00-22:00")
                continue
            if pairs:
                raw[day] = [[a.strip(), b.strip()] for a, b in (p.split("-") for p in pairs)]
        try:
            self.parsed = schedule.parse(raw)
        except schedule.ScheduleError as exc:
            self.add_error(None, str(exc))
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and start > end:
            self.add_error("valid_until", "must not be before 'valid from'")
        return data

    def save(self, commit: bool = True) -> AccessLevel:
        self.instance.schedule = schedule.dump(self.parsed)
        return super().save(commit)


def grid(ranges) -> list[dict]:
    """Per weekday the half-hour cells a schedule covers: "on" (its own range) or "carry" (the part after
    midnight of yesterday's range)."""
    cells = [[""] * SLOTS for _ in schedule.DAYS]
    for r in ranges:
        first, last = r.start // 30, (r.end + 29) // 30
        if not r.crosses_midnight:
            for s in range(first, last):
                cells[r.day][s] = "on"
            continue
        for s in range(first, SLOTS):
            cells[r.day][s] = "on"
        for s in range(0, last):
            cells[(r.day + 1) % 7][s] = cells[(r.day + 1) % 7][s] or "carry"
    return [{"day": day, "name": schedule.DAY_NAMES[i], "cells": cells[i]} for i, day in enumerate(schedule.DAYS)]


def person_context(person: Person) -> dict:
    """The person page's access panel: where and when they may enter, and their door credentials."""
    from access.entry import entry_rows

    return {"entries": entry_rows(person), "door_pin": PersonPin.objects.filter(person=person).first(),
            "cards": list(Card.objects.filter(person=person))}


@role_required()
def rules_index(request):
    levels = list(AccessLevel.objects.prefetch_related("sites", "cameras__site", "groups", "people"))
    for level in levels:
        level.summary = level.describe()
    return render(request, "console/rules.html", {
        "groups": PersonGroup.objects.prefetch_related("members"), "levels": levels,
        "sites": Site.objects.prefetch_related("holidays"),
        "locked": PersonPin.objects.exclude(locked_at=None).select_related("person"),
    })


def _save_or_delete(request, form, row, noun: str, saved_message) -> HttpResponse | None:
    """A POST of an edit page: delete ``row`` (its Delete button) or save the valid form, then back to the rules
    page with a message; None when the page is to be shown (a GET, or a form with errors)."""
    if request.method != "POST":
        return None
    if request.POST.get("delete") and row is not None:
        row.delete()
        messages.success(request, f"{noun} {row.name} deleted.")
        return redirect("console:rules")
    if form.is_valid():
        messages.success(request, saved_message(form.save()))
        return redirect("console:rules")
    return None


@role_required(roles.ADMINS)
def group_edit(request, pk: int | None = None):
    group = get_object_or_404(PersonGroup, pk=pk) if pk else None
    form = GroupForm(request.POST or None, instance=group)
    done = _save_or_delete(request, form, group, "Group", lambda saved: f"Group {saved.name} saved.")
    return done or render(request, "console/group_form.html", {"form": form, "group": group})


@role_required(roles.ADMINS)
def level_edit(request, pk: int | None = None):
    level = get_object_or_404(AccessLevel, pk=pk) if pk else None
    form = LevelForm(request.POST or None, instance=level)
    done = _save_or_delete(request, form, level, "Access level",
                           lambda saved: f"Access level {saved.name} saved: {saved.describe()}.")
    if done:
        return done
    shown = getattr(form, "parsed", None)
    if shown is None:
        shown = schedule.parse(level.schedule) if level is not None else ()
    return render(request, "console/level_form.html", {
        "form": form, "level": level, "grid_rows": list(zip(grid(shown), form.day_fields(), strict=True)),
        "hours": range(0, 24, 3)})


@role_required(roles.ADMINS)
@require_POST
def holiday_add(request, site_pk: int):
    site = get_object_or_404(Site, pk=site_pk)
    try:
        day = forms.DateField().clean(request.POST.get("date"))
    except forms.ValidationError:
        day = None
    if day is None:
        messages.error(request, "Give the holiday's date.")
    elif Holiday.objects.filter(site=site, date=day).exists():
        messages.error(request, f"{day} is already a holiday at {site.name}.")
    else:
        Holiday.objects.create(site=site, date=day, name=request.POST.get("name", "")[:200])
        messages.success(request, f"{day} is a holiday at {site.name}.")
    return redirect("console:rules")


@role_required(roles.ADMINS)
@require_POST
def holiday_delete(request, pk: int):
    holiday = get_object_or_404(Holiday, pk=pk)
    holiday.delete()
    messages.success(request, f"{holiday.date} is no longer a holiday.")
    return redirect("console:rules")


@role_required(roles.ADMINS)
@require_POST
def person_credentials(request, pk: int):
    """Set a PIN, add or remove a card, unlock the PIN, remove the PIN: what the person's page posts."""
    person = get_object_or_404(Person, pk=pk)
    action = request.POST.get("action", "")
    try:
        if action == "pin":
            credentials.set_pin(person.pk, request.POST.get("pin", ""))
            messages.success(request, f"{person.name}'s PIN is set (it is not shown again).")
        elif action == "clear_pin":
            credentials.clear_pin(person.pk)
            messages.success(request, f"{person.name} has no PIN now.")
        elif action == "unlock":
            credentials.unlock_pin(person.pk)
            messages.success(request, f"{person.name}'s PIN is unlocked.")
        elif action == "card":
            card = credentials.add_card(person.pk, request.POST.get("card", ""), request.POST.get("label", "")[:100])
            messages.success(request, f"Card …{card.last4} given to {person.name}.")
        elif action == "remove_card":
            Card.objects.filter(person=person, pk=request.POST.get("card_id") or 0).delete()
            messages.success(request, "Card removed.")
    except credentials.CredentialError as exc:
        messages.error(request, str(exc))
    return redirect("console:person", person.pk)
