"""The v1 REST API, composed here at the top layer (namespace ``api``): enrollment's people and faces,
access's sites, cameras, snapshots and events, and the API root. The project mounts it at ``api/v1/``."""

from django.db import transaction
from django.urls import NoReverseMatch, include, path
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.routers import SimpleRouter

from enrollment.api.views import FaceImageViewSet
from faceaccess.api.audit import AuditLogViewSet
from faceaccess.api.auth import ObtainTokenView

from .bridge import BridgeCamerasView, BridgeStatusView
from .embedder import EmbedderActionView, EmbedderView
from .events import AccessEventViewSet
from .people import PersonViewSet
from .reviews import EventReviewView, StrangersActionView, StrangersView
from .rules import (
    AccessLevelViewSet,
    HolidayViewSet,
    PersonAccessView,
    PersonCredentialsView,
    PersonGroupViewSet,
    PinLockoutsView,
)
from .sites import CameraViewSet, SiteViewSet
from .snapshots import SnapshotView
from .tuning import SiteTuningView

app_name = "api"

router = SimpleRouter()
router.register("people", PersonViewSet, basename="person")
router.register("faces", FaceImageViewSet, basename="faceimage")
router.register("sites", SiteViewSet, basename="site")
router.register("cameras", CameraViewSet, basename="camera")
router.register("events", AccessEventViewSet, basename="accessevent")
router.register("audit", AuditLogViewSet, basename="audit")
router.register("groups", PersonGroupViewSet, basename="persongroup")  # access rules (access.api.rules)
router.register("access-levels", AccessLevelViewSet, basename="accesslevel")
router.register("holidays", HolidayViewSet, basename="holiday")

_ROOT = {
    "people": "api:person-list",
    "faces": "api:faceimage-list",
    "sites": "api:site-list",
    "cameras": "api:camera-list",
    "events": "api:accessevent-list",
    "snapshots": "api:snapshots",
    "strangers": "api:strangers",
    "audit": "api:audit-list",
    "groups": "api:persongroup-list",
    "access_levels": "api:accesslevel-list",
    "holidays": "api:holiday-list",
    "pin_lockouts": "api:pin-lockouts",
    "embedder": "api:embedder",
    "token": "api:token",
    "schema": "api-schema",
}


@extend_schema(exclude=True)
@api_view(["GET"])
@permission_classes([AllowAny])
def api_root(request, format=None):
    """Links to every collection of the v1 API."""
    links = {}
    for name, view_name in _ROOT.items():
        try:
            links[name] = reverse(view_name, request=request, format=format)
        except NoReverseMatch:
            continue
    return Response(links)


urlpatterns = [
    path("", api_root, name="root"),
    # Never inside a request-wide transaction: the task is queued on commit and ?wait polls for its result.
    path("snapshots/", transaction.non_atomic_requests(SnapshotView.as_view()), name="snapshots"),
    path("auth/token/", ObtainTokenView.as_view(), name="token"),
    path("events/<int:pk>/review/", EventReviewView.as_view(), name="event-review"),
    path("strangers/", StrangersView.as_view(), name="strangers"),
    path("strangers/act/", StrangersActionView.as_view(), name="strangers-act"),
    path("sites/<int:pk>/tuning/", SiteTuningView.as_view(), name="site-tuning"),
    path("embedder/", EmbedderView.as_view(), name="embedder"),
    path("embedder/switch/", EmbedderActionView.as_view(action_name="switch"), name="embedder-switch"),
    path("embedder/confirm/", EmbedderActionView.as_view(action_name="confirm"), name="embedder-confirm"),
    path("embedder/cancel/", EmbedderActionView.as_view(action_name="cancel"), name="embedder-cancel"),
    path("people/<int:pk>/credentials/", PersonCredentialsView.as_view(), name="person-credentials"),
    path("people/<int:pk>/access/", PersonAccessView.as_view(), name="person-access"),
    path("pin-lockouts/", PinLockoutsView.as_view(), name="pin-lockouts"),
    path("bridge/cameras/", BridgeCamerasView.as_view(), name="bridge-cameras"),
    path("bridge/status/", BridgeStatusView.as_view(), name="bridge-status"),
    path("", include(router.urls)),
]
