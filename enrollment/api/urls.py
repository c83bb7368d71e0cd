"""People and face images under ``/api/v1/`` (the project includes this next to recognition.api.urls)."""

from rest_framework.routers import SimpleRouter

from .views import FaceImageViewSet, PersonViewSet

app_name = "enrollment-api"

router = SimpleRouter()
router.register("people", PersonViewSet, basename="person")
router.register("faces", FaceImageViewSet, basename="faceimage")

urlpatterns = router.urls
