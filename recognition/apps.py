from django.apps import AppConfig


class RecognitionConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "recognition"
    verbose_name = "Recognition"

    def ready(self) -> None:
        from .api import schema  # noqa: F401  (OpenAPI description of the camera Api-Key auth)
