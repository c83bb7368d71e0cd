"""OpenAPI (drf-spectacular) description of the camera key scheme."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class CameraKeyScheme(OpenApiAuthenticationExtension):
    target_class = "access.api.authentication.CameraKeyAuthentication"
    name = "cameraApiKey"

    def get_security_definition(self, auto_schema):  # noqa: ANN201 (spectacular hook)
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Camera key, sent as `Api-Key <key>` (shown once when the camera is created).",
        }
