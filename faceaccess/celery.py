"""The Celery app. Configuration comes from Django settings (CELERY_* names); tasks are autodiscovered
from the installed apps' tasks.py. Start a worker with: celery -A faceaccess worker -Q gpu,gpu-bulk,celery"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "faceaccess.settings")

app = Celery("faceaccess")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="faceaccess.health_check")
def health_check() -> dict:
    """Round trip through the broker to a worker and its database: which database it uses and how
    many user rows it sees (the test suite checks it reads the rows a test committed)."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    return {"database": connection.settings_dict["NAME"], "users": get_user_model().objects.count()}
