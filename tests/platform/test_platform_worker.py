"""The `celery_worker_process` fixture: a real worker process on the test database and Redis."""

import pytest
from django.db import connection

from faceaccess.celery import health_check


@pytest.mark.django_db(transaction=True)
def test_worker_reads_rows_the_test_committed(celery_worker_process, django_user_model):
    django_user_model.objects.create_user("probe", password="not-used")
    for queue in ("celery", "gpu"):  # the worker consumes both queues
        result = health_check.apply_async(queue=queue).get(timeout=60)
        assert result == {"database": connection.settings_dict["NAME"], "users": 1}
    assert connection.settings_dict["NAME"].startswith("test_")
    celery_worker_process.assert_alive()
    assert "ready" in celery_worker_process.log_text()
