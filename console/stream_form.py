"""The camera form's stream and MQTT fields (README "Connect a camera"): a source URL typed with its credentials
is stored without them; the password is never sent back to the browser (an empty password field keeps the stored
one)."""

from __future__ import annotations

from django import forms

from access.bridge import sources

STREAM_FIELDS = ["stream_url", "stream_kind", "stream_username", "stream_password", "stream_fps", "motion_threshold",
                 "stream_roi", "grant_cooldown_seconds", "mqtt_unlock_topic", "mqtt_unlock_payload",
                 "mqtt_lock_payload", "mqtt_pulse_seconds"]
WIDE = "wide-input"  # a camera URL is long (console.css; the CSP allows no style attribute)
STREAM_WIDGETS = {"stream_password": forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                  "stream_url": forms.TextInput(attrs={"placeholder": "rtsp://user:password@192.168.1.20:554/stream2",
                                                       "class": WIDE, "autocomplete": "off"}),
                  "stream_roi": forms.TextInput(attrs={"placeholder": "[0.25, 0.0, 0.75, 1.0]"}),
                  "mqtt_unlock_topic": forms.TextInput(attrs={"class": WIDE})}
LABELS = {"stream_url": "Stream URL", "stream_kind": "Source kind", "stream_username": "Stream user name",
          "stream_password": "Stream password", "stream_fps": "Frames looked at per second",
          "motion_threshold": "Motion gate (% of the region changing)", "stream_roi": "Door zone",
          "grant_cooldown_seconds": "Cooldown after a grant (s)", "mqtt_unlock_topic": "MQTT unlock topic",
          "mqtt_unlock_payload": "Unlock payload", "mqtt_lock_payload": "Lock payload (after the pulse)",
          "mqtt_pulse_seconds": "Pulse (s)"}


class StreamFieldsMixin:
    """For a Camera ModelForm whose Meta.fields include STREAM_FIELDS."""

    def init_stream_fields(self) -> None:
        for name, label in LABELS.items():
            self.fields[name].label = label
        for name in ("stream_fps", "motion_threshold", "grant_cooldown_seconds", "mqtt_pulse_seconds",
                     "mqtt_unlock_payload", "mqtt_lock_payload"):
            self.fields[name].required = False
        self.fields["stream_kind"].choices = [("", "from the URL (http: snapshot)"), *sources.KIND_CHOICES]
        stored = self.instance.pk and self.instance.stream_password
        self.fields["stream_password"].help_text = ("Stored; leave empty to keep it." if stored else
                                                    "Or put user:password@ in the URL: either way it is never shown "
                                                    "again.")

    def clean_stream_url(self) -> str:
        try:
            bare, user, password = sources.split_credentials(self.cleaned_data.get("stream_url") or "")
        except sources.BadSource as exc:
            raise forms.ValidationError(str(exc)) from None
        self._url_credentials = (user, password)
        return bare

    def clean(self) -> dict:
        data = super().clean()
        for name in ("stream_fps", "motion_threshold", "grant_cooldown_seconds", "mqtt_pulse_seconds",
                     "mqtt_unlock_payload", "mqtt_lock_payload"):
            if data.get(name) in (None, "") and name in self.fields:
                data[name] = self.instance._meta.get_field(name).get_default()
        user, password = getattr(self, "_url_credentials", ("", ""))
        if user or password:
            data["stream_username"], data["stream_password"] = user, password
        elif not data.get("stream_password") and self.instance.pk:
            data["stream_password"] = self.instance.stream_password  # an empty field keeps the stored password
        if not data.get("stream_url"):
            data.update(stream_username="", stream_password="", stream_kind="")
        return data
