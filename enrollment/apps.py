from django.apps import AppConfig


class EnrollmentConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "enrollment"
    verbose_name = "Enrollment"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from faceaccess import audit  # noqa: F401  (its guard keeps secrets out of every audit entry)

        from . import signals  # noqa: F401  (connects the file clean-up handlers)
        from .models import FaceImage, Person

        auditlog.register(Person)  # enrollments, edits, deletions: who, when, before/after
        # A photo added or deleted (its processing status changes are not people's actions: not logged).
        auditlog.register(FaceImage, include_fields=["person", "original_name"])
