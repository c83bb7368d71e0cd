"""Camera secrets after creation: rotating the webhook signing secret (the API key's rotation is
``Camera.set_new_key``). The audit trail records that the secret changed and by whom, never its value."""

from __future__ import annotations

from faceaccess import audit

from .models import Camera, new_webhook_secret


def rotate_webhook_secret(camera: Camera) -> str:
    """Give ``camera`` a new webhook secret and return it in clear (the only time it is shown)."""
    camera.webhook_secret = new_webhook_secret()
    camera.save(update_fields=["webhook_secret"])
    audit.record(camera, "webhook secret rotated")
    return camera.webhook_secret
