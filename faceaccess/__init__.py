"""FaceAccess Django project: settings from the environment, Celery app, embedded dev services."""

from .celery import app as celery_app

__all__ = ["celery_app"]
