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
        auditlog.register(Camera, exclude_fields=["key_hash", "webhook_secret", "last_seen_at"])
        auditlog.register(AccessGrant)
        auditlog.register(EventReview)  # reviews, "not X" included
        # Model switches: started, switched, cancelled (not the progress counters).
        auditlog.register(EmbedderState, include_fields=["active_name", "target_name", "state"])
