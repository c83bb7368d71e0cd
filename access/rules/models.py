"""The tables of access rules (imported by :mod:`access.models`, so Django finds them as the ``access`` app's):
groups of people, access levels (doors x weekly schedule x validity dates, granted to people or groups), a site's
holidays, and people's door credentials (a PIN as a slow hash with its lockout, card numbers).

Sites and cameras are named by string (``"access.Site"``): nothing here imports :mod:`access.models`, which
imports this module."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from faceaccess.validity import ordered_validity

from . import schedule


def validate_schedule(value: object) -> None:
    try:
        schedule.parse(value)
    except schedule.ScheduleError as exc:
        raise ValidationError(str(exc)) from None


class PersonGroup(models.Model):
    """People who share access levels ("Cleaning staff"); a person may be in several groups."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    members = models.ManyToManyField("enrollment.Person", related_name="access_groups", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AccessLevel(models.Model):
    """Which doors (whole sites, or single cameras), when (a weekly schedule in each site's local time; empty:
    any time), between which dates, for which people and groups."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    schedule = models.JSONField(default=dict, blank=True, validators=[validate_schedule],
                                help_text='Ranges per weekday in the site\'s time zone, e.g. {"mon": [["18:00", '
                                          '"22:00"]]}; an end not after its start crosses midnight; empty: any time.')
    holidays_too = models.BooleanField(default=False, help_text="Also applies on the site's holidays.")
    valid_from = models.DateField(null=True, blank=True, help_text="First day (the site's local date).")
    valid_until = models.DateField(null=True, blank=True, help_text="Last day (included).")
    sites = models.ManyToManyField("access.Site", related_name="access_levels", blank=True)
    cameras = models.ManyToManyField("access.Camera", related_name="access_levels", blank=True)
    people = models.ManyToManyField("enrollment.Person", related_name="access_levels", blank=True)
    groups = models.ManyToManyField(PersonGroup, related_name="access_levels", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [ordered_validity("level_validity_ordered")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.valid_from and self.valid_until and self.valid_from > self.valid_until:
            raise ValidationError({"valid_until": "must not be before valid_from"})

    def describe(self) -> str:
        """The level in words ("Mon-Fri 18:00-22:00 ..."), for the console and the API."""
        try:
            ranges = schedule.parse(self.schedule)
        except schedule.ScheduleError:
            return "never (unreadable schedule)"
        return schedule.Level(self.pk, self.name, ranges, self.valid_from, self.valid_until,
                              self.holidays_too).describe()


class Holiday(models.Model):
    """A day on which only the levels marked "holidays too" apply at this site."""

    site = models.ForeignKey("access.Site", on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["site_id", "date"]
        constraints = [models.UniqueConstraint(fields=["site", "date"], name="holiday_one_per_site_date")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}".strip()


class PersonPin(models.Model):
    """A person's door PIN: only its slow hash (Django's password hashers), never the PIN; wrong PINs in a row
    lock it (``locked_at``) until an admin unlocks it or a new PIN is set."""

    person = models.OneToOneField("enrollment.Person", on_delete=models.CASCADE, related_name="door_pin")
    pin_hash = models.CharField(max_length=256)
    failures = models.PositiveIntegerField(default=0, help_text="Wrong PINs in a row.")
    locked_at = models.DateTimeField(null=True, blank=True)
    set_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"PIN of {self.person_id}{' (locked)' if self.locked_at else ''}"


class Card(models.Model):
    """A person's access card. The number is kept as its SHA-256 (found by it, unique across people) plus its last
    4 digits for people to recognise it; nothing else of it is shown or logged."""

    person = models.ForeignKey("enrollment.Person", on_delete=models.CASCADE, related_name="door_cards")
    number_hash = models.CharField(max_length=64, unique=True, editable=False)
    last4 = models.CharField(max_length=4, editable=False)
    label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["person_id", "id"]

    def __str__(self) -> str:
        return f"card …{self.last4}"
