"""The active embedder and a switch to another one (admins only): ``GET /api/v1/embedder/`` shows the active
model, the switch's state and progress (done / total / failed, each failed photo with its reason, the people
who would lose their last usable photo) and every site's threshold with the model it belongs to;
``POST /api/v1/embedder/switch/ {"model": NAME}`` starts one, ``.../confirm/`` switches although some photos
failed, ``.../cancel/`` stops it (access.model_switch)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from knox.auth import TokenAuthentication
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from access import model_switch
from faceaccess import roles
from faceaccess.api.base import record_actor
from faceaccess.api.errors import ApiError, JsonErrorsMixin


class _AdminAPI(JsonErrorsMixin, APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [roles.HasRole]
    read_roles = roles.ADMINS
    write_roles = roles.ADMINS

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        record_actor(request.user)  # the threshold changes of a confirmed switch are audited under this user


def _status() -> dict:
    data = model_switch.status()
    for key in ("started_at", "finished_at", "switched_at"):
        data[key] = data[key].isoformat() if data[key] else None
    return data


class EmbedderView(_AdminAPI):
    read_roles = roles.OVERSEERS  # auditors read the state; only admins switch
    def get(self, request):
        """The active embedder, the switch under way (or the last one) and every site's threshold per model."""
        return Response(_status())


class EmbedderActionView(_AdminAPI):
    action_name = ""

    @extend_schema(request=inline_serializer("EmbedderSwitch", {"model": serializers.CharField(required=False)}))
    def post(self, request):
        who = request.user.get_username()
        try:
            if self.action_name == "switch":
                model = str(request.data.get("model", "")).strip()
                if not model:
                    raise ApiError("model_required", 'give the target model: {"model": "facenet-irv1"}')
                model_switch.start(model, by=who)
            elif self.action_name == "confirm":
                model_switch.confirm(by=who)
            else:
                model_switch.cancel(by=who)
        except model_switch.SwitchError as exc:
            raise ApiError(exc.code, exc.detail, exc.status) from None
        code = status.HTTP_202_ACCEPTED if self.action_name == "switch" else status.HTTP_200_OK
        return Response(_status(), status=code)
