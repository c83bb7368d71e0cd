"""Console forms: the models' own validation, with labels and help a person understands."""

from __future__ import annotations

import zoneinfo

from django import forms

from access.models import Camera, Site
from access.thresholds import set_threshold
from enrollment.models import Person

from .stream_form import STREAM_FIELDS, STREAM_WIDGETS, StreamFieldsMixin


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"


class PersonForm(forms.ModelForm):
    sites = forms.ModelMultipleChoiceField(
        queryset=Site.objects.all(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Sites this person may enter (every camera of the site, unless a camera's allow-list narrows it).",
    )

    class Meta:
        model = Person
        fields = ["name", "external_id", "active", "valid_from", "valid_until", "notes"]
        widgets = {"valid_from": DateTimeInput(), "valid_until": DateTimeInput(),
                   "notes": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"active": "An inactive person is recognised but never let in.",
                      "valid_from": "Optional: not let in before this time.",
                      "valid_until": "Optional: not let in after this time."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["sites"].initial = list(self.instance.sites.all())

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and start > end:
            self.add_error("valid_until", "must not be before 'valid from'")
        return data

    def save(self, commit: bool = True) -> Person:
        person = super().save(commit=True)
        person.sites.set(self.cleaned_data.get("sites") or [])
        return person


def time_zone_choices(current: str = "UTC") -> list[tuple[str, str]]:
    zones = sorted(zoneinfo.available_timezones() | {"UTC", current})
    return [(z, z.replace("_", " ")) for z in zones]


class SiteForm(forms.ModelForm):
    class Meta:
        model = Site
        fields = ["name", "timezone", "match_threshold", "liveness_policy", "liveness_threshold", "min_face_px",
                  "min_detection_score", "detection_policy", "verification",
                  "decision_deadline_seconds", "max_snapshot_pixels", "retain_unknown_days", "retain_known_days"]
        help_texts = {"match_threshold": "Leave empty for the current model's identification threshold. "
                                         "Tune it on the site's threshold page."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["match_threshold"].required = False
        # A choice list of the IANA zones (typing "Europe/Paris" by hand invites typos); a zone stored before that
        # is not in this system's list stays selectable.
        current = self.instance.timezone if self.instance.pk else "UTC"
        self.fields["timezone"].widget = forms.Select(choices=time_zone_choices(current))
        self.fields["timezone"].help_text = "The doors' local time: schedules and the log's times follow it."

    def save(self, commit: bool = True) -> Site:
        value = self.cleaned_data.get("match_threshold")
        if self.instance.pk and "match_threshold" in self.changed_data and value is not None:
            set_threshold(self.instance, value, save=False)  # a number set now is the active model's
        return super().save(commit)


class CameraForm(StreamFieldsMixin, forms.ModelForm):
    class Meta:
        model = Camera
        fields = ["name", "active", "allowed_people", "webhook_url", "debounce_seconds", "verification",
                  *STREAM_FIELDS]
        widgets = {"allowed_people": forms.SelectMultiple(attrs={"size": 6}), **STREAM_WIDGETS}
        help_texts = {"allowed_people": "Empty: every person of the site may pass. Otherwise only these people.",
                      "active": "An inactive camera's key is refused."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["debounce_seconds"].required = False
        self.init_stream_fields()

    def clean_name(self) -> str:
        """A second camera of the same name on the site is a form error, not a 500 (the form has no ``site``
        field, so Django's own check of the unique constraint skips it). Reloading the key page re-posts the
        form and lands here too."""
        name = self.cleaned_data.get("name", "")
        site_id = self.instance.site_id
        if site_id and Camera.objects.filter(site_id=site_id, name__iexact=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(f"This site already has a camera named {name!r}: choose another name "
                                        "(or open that camera from the sites page).")
        return name

    def clean_debounce_seconds(self) -> int:
        value = self.cleaned_data.get("debounce_seconds")
        return Camera._meta.get_field("debounce_seconds").default if value is None else value
