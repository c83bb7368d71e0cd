from django.apps import AppConfig


class AccessConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "access"
    verbose_name = "Access"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from . import signals  # noqa: F401  (every signal handler of access)
        from .api import schema  # noqa: F401  (OpenAPI description of the camera Api-Key auth)
        from .models import AccessGrant, Camera, Site

        # Who changed a threshold, a camera (a new key_prefix = a key rotation) or a grant, and when.
        auditlog.register(Site)
        auditlog.register(Camera, exclude_fields=["key_hash", "last_seen_at", "stream_username", "stream_password"])
        auditlog.register(AccessGrant)
