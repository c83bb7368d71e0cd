"""Top-level URLs: the console (site root), login, admin, the versioned REST API (owned by the apps),
the OpenAPI schema and docs."""

from django.contrib import admin
from django.contrib.auth import views as auth
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from .api.auth import ObtainTokenView
from .health import healthz
from .media_endpoint import media as internal_media

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    # Workers on other machines read and write stored photos here (worker key only; docs/running.md, "Scaling out").
    path("internal/media/<path:name>", internal_media, name="internal-media"),
    path("login/", auth.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("password/", auth.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", auth.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("admin/", admin.site.urls),
    # DRF's token view with throttles and django-axes lockouts; listed before the v1 API so that it answers
    # api/v1/auth/token/ (reverse("api:token") still names the same path).
    path("api/v1/auth/token/", ObtainTokenView.as_view(), name="auth-token"),
    # The v1 API is composed by the top layer (access); included by name so plumbing imports no app.
    path("api/v1/", include("access.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api-auth/", include("rest_framework.urls")),
    # The admins' console, the top layer (included by name: plumbing imports no app).
    path("", include("console.urls")),
]
