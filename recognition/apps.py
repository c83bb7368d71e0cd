from django.apps import AppConfig


class RecognitionConfig(AppConfig):
    """The engine, the per-process pipeline holder and the pgvector search; no tables of its own."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "recognition"
    verbose_name = "Recognition"
