from django.apps import AppConfig


class RecognitionConfig(AppConfig):
    """The engine, the per-process pipeline holder, the pgvector search, and the one row saying which embedder
    decides (EmbedderState)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "recognition"
    verbose_name = "Recognition"
