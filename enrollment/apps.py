from django.apps import AppConfig


class EnrollmentConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "enrollment"
    verbose_name = "Enrollment"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from . import signals  # noqa: F401  (connects the file clean-up handlers)
        from .models import Person

        auditlog.register(Person)  # enrollments, edits, deletions: who, when, before/after
