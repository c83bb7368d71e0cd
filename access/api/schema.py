"""OpenAPI (drf-spectacular) description of the camera key and camera bridge token schemes."""

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


class BridgeTokenScheme(OpenApiAuthenticationExtension):
    target_class = "access.api.bridge.BridgeTokenAuthentication"
    name = "bridgeToken"

    def get_security_definition(self, auto_schema):  # noqa: ANN201 (spectacular hook)
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "The camera bridge's token, sent as `Bridge <FACEACCESS_BRIDGE_TOKEN>`.",
        }
