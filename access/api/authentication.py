"""Cameras authenticate with ``Authorization: Api-Key <key>``; people with a token or a session."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from access.models import Camera
from faceaccess import roles

SCHEME = "Api-Key"


class MachinePrincipal:
    """``request.user`` for a machine (a camera, the camera bridge): authenticated, never staff, no user row."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = id = None


class CameraPrincipal(MachinePrincipal):
    """``request.user`` for a camera."""

    def __init__(self, camera: Camera):
        self.camera = camera

    def __str__(self) -> str:
        return f"camera {self.camera.pk}"


class CameraKeyAuthentication(BaseAuthentication):
    def authenticate(self, request) -> tuple[CameraPrincipal, Camera] | None:
        header = get_authorization_header(request).decode("latin-1")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != SCHEME.lower():
            return None
        key = key.strip()
        if not key:
            raise exceptions.AuthenticationFailed("the Api-Key header has no key", code="invalid_api_key")
        camera = Camera.from_key(key)
        if camera is None:
            raise exceptions.AuthenticationFailed("unknown or revoked API key", code="invalid_api_key")
        return CameraPrincipal(camera), camera

    def authenticate_header(self, request) -> str:
        return SCHEME


def camera_of(request) -> Camera | None:
    return request.auth if isinstance(request.auth, Camera) else None


class IsActiveCamera(BasePermission):
    def has_permission(self, request, view) -> bool:
        camera = camera_of(request)
        if camera is None:
            raise exceptions.NotAuthenticated(
                f"send the camera's key as 'Authorization: {SCHEME} <key>'", code="missing_api_key"
            )
        if not camera.active:
            raise exceptions.PermissionDenied("this camera is deactivated", code="camera_inactive")
        return True


class HasRoleOrCamera(BasePermission):
    """Anyone with a role reads every event; an active camera reads only its own (the view narrows the
    queryset)."""

    def has_permission(self, request, view) -> bool:
        camera = camera_of(request)
        if camera is not None:
            if not camera.active:
                raise exceptions.PermissionDenied("this camera is deactivated", code="camera_inactive")
            return request.method in ("GET", "HEAD", "OPTIONS")
        return roles.HasRole().has_permission(request, view)
