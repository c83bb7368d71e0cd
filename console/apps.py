from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The web console: the top layer, over the API apps (nothing imports it)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "console"
    verbose_name = "Console"
