from django.apps import AppConfig


class AccessConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "access"
    verbose_name = "Access"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from recognition.models import EmbedderState

        from . import signals  # noqa: F401  (every signal handler of access)
        from .api import schema  # noqa: F401  (OpenAPI description of the camera Api-Key auth)
        from .models import AccessGrant, Camera, EventReview, Site

        # Who changed a threshold or a policy, a camera (a new key_prefix = a key rotation) or a grant, and when.
        # Secrets are never written (faceaccess.audit drops any field named like one; listed here too).
        auditlog.register(Site)
        auditlog.register(Camera, exclude_fields=["key_hash", "webhook_secret", "last_seen_at", "stream_username",
                                                  "stream_password"])
        auditlog.register(AccessGrant)
        # Access rules: groups and levels with their people, doors and members; credentials without their secrets
        # (a PIN's hash and a card's number hash never enter the trail: "PIN set", "card …1234" do).
        from .rules.models import AccessLevel, Card, Holiday, PersonGroup, PersonPin

        auditlog.register(PersonGroup, m2m_fields={"members"})
        auditlog.register(AccessLevel, m2m_fields={"people", "groups", "sites", "cameras"})
        auditlog.register(Holiday)
        auditlog.register(PersonPin, exclude_fields=["pin_hash"])
        auditlog.register(Card, exclude_fields=["number_hash"])
        auditlog.register(EventReview)  # reviews, "not X" included
        # Model switches: started, switched, cancelled (not the progress counters).
        auditlog.register(EmbedderState, include_fields=["active_name", "target_name", "state"])
