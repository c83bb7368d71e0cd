"""Review, strangers and threshold-tuning endpoints: everything the console does, through the API.

Roles (faceaccess.roles): reviewing and strangers' actions need admin or operator; reading needs a role;
tuning is for admins.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from knox.auth import TokenAuthentication
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from access import strangers, tuning
from access.models import AccessEvent, EventReview, Site
from access.reviews import ReviewError, review
from enrollment.models import Person
from faceaccess import roles
from faceaccess.api.errors import ApiError, JsonErrorsMixin


class _RoleAPI(JsonErrorsMixin, APIView):
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [roles.HasRole]
    write_roles = roles.EDITORS


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.get_username", read_only=True, default=None)

    class Meta:
        model = EventReview
        fields = ["id", "event", "face_index", "verdict", "person", "added_to_enrollment", "reviewer", "note",
                  "created_at"]
        read_only_fields = fields


class ReviewRequest(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=EventReview.Verdict.values)
    face = serializers.IntegerField(required=False, min_value=0, help_text="Face index; default: the decided face.")
    person = serializers.PrimaryKeyRelatedField(queryset=Person.objects.all(), required=False,
                                                help_text="is_person: who it is; not_person: who it is not.")
    add_to_enrollment = serializers.BooleanField(required=False, default=False)
    note = serializers.CharField(required=False, allow_blank=True, default="")


class EventReviewView(_RoleAPI):
    @extend_schema(responses=ReviewSerializer(many=True))
    def get(self, request, pk: int):
        """The reviews of an event."""
        event = get_object_or_404(AccessEvent, pk=pk)
        return Response(ReviewSerializer(event.reviews.select_related("reviewer"), many=True).data)

    @extend_schema(request=ReviewRequest, responses={201: ReviewSerializer})
    def post(self, request, pk: int):
        """Confirm the decision, say who the face is (optionally enrolling it), or that it is not the matched
        person (kept as an impostor example: a later face nearer it than the person's photos is not let in)."""
        event = get_object_or_404(AccessEvent, pk=pk)
        body = ReviewRequest(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            done = review(event, data["verdict"], request.user, data.get("face"), data.get("person"),
                          data["add_to_enrollment"], data["note"])
        except ReviewError as exc:
            raise ApiError("invalid_review", str(exc)) from None
        return Response(ReviewSerializer(done).data, status=status.HTTP_201_CREATED)


class StrangersView(_RoleAPI):
    @extend_schema(parameters=[OpenApiParameter("days", int), OpenApiParameter("min", int)],
                   responses=inline_serializer("StrangerGroup", {
                       "count": serializers.IntegerField(), "faces": serializers.ListField(),
                       "events": serializers.ListField(), "first_seen": serializers.DateTimeField(),
                       "last_seen": serializers.DateTimeField(), "cameras": serializers.ListField()}, many=True))
    def get(self, request):
        """Unknown faces seen repeatedly, grouped by similarity (face ids to enroll or dismiss)."""
        days = _positive(request.query_params.get("days"), 7)
        groups = strangers.group_strangers(days=days, min_count=_positive(request.query_params.get("min"), 2))
        return Response([{"count": len(g.faces), "faces": g.face_ids, "events": [f.event_id for f in g.faces],
                          "first_seen": g.first_seen, "last_seen": g.last_seen, "cameras": g.cameras} for g in groups])


class StrangersActionView(_RoleAPI):
    @extend_schema(request=inline_serializer("StrangerAction", {
        "action": serializers.ChoiceField(choices=["enroll", "dismiss"]), "faces": serializers.ListField(),
        "name": serializers.CharField(required=False), "site": serializers.IntegerField(required=False)}))
    def post(self, request):
        """``enroll`` the faces as a new person (``name``, optional ``site``) or ``dismiss`` them."""
        faces = request.data.get("faces") or []
        if not isinstance(faces, list) or not all(isinstance(f, int) for f in faces) or not faces:
            raise ApiError("invalid_faces", "faces must be a non-empty list of face ids")
        action = request.data.get("action")
        if action == "dismiss":
            return Response({"dismissed": strangers.dismiss_strangers(faces)})
        if action != "enroll":
            raise ApiError("invalid_action", "action must be enroll or dismiss")
        site = get_object_or_404(Site, pk=request.data["site"]) if request.data.get("site") else None
        try:
            person = strangers.enroll_strangers(faces, str(request.data.get("name") or ""), site)
        except ValueError as exc:
            raise ApiError("invalid_strangers", str(exc)) from None
        return Response({"person": person.pk, "name": person.name, "photos": person.face_images.count()},
                        status=status.HTTP_201_CREATED)


class SiteTuningView(_RoleAPI):
    read_roles = roles.ADMINS

    @extend_schema(parameters=[OpenApiParameter("candidate", float), OpenApiParameter("far", float),
                               OpenApiParameter("last", int)])
    def get(self, request, pk: int):
        """What the site's enrolled photos say about a threshold, and which of the last events a candidate
        threshold would decide differently (replayed from stored inputs)."""
        site = get_object_or_404(Site, pk=pk)
        candidate = _float(request.query_params.get("candidate"), site.match_threshold)
        far = _float(request.query_params.get("far"), 0.01)
        d = tuning.site_distances(site)
        replay = tuning.what_if(site, candidate, _positive(request.query_params.get("last"), 100))
        return Response({
            "threshold": site.match_threshold, "candidate": candidate, "model": d.model, "people": d.people,
            "embeddings": d.embeddings,
            "identification_far": {"threshold": d.false_accept(site.match_threshold),
                                   "candidate": d.false_accept(candidate)},
            "genuine_accept": {"threshold": d.genuine_accept(site.match_threshold),
                               "candidate": d.genuine_accept(candidate)},
            "suggested": {"far_target": far, "threshold": d.suggest(far)},
            "what_if": {"examined": replay.examined, "changed": [
                {"event": c["event"].pk, "was": c["was"], "now": c["now"], "person": c["person"],
                 "reason": c["reason"]} for c in replay.changed]},
        })


def _positive(raw: str | None, default: int) -> int:
    return int(raw) if raw and raw.isdigit() and int(raw) > 0 else default


def _float(raw: str | None, default: float) -> float:
    try:
        value = float(raw) if raw not in (None, "") else default
    except ValueError:
        raise ApiError("invalid_number", f"expected a number, got {raw!r}") from None
    if not 0.0 < value <= 2.0:
        raise ApiError("invalid_number", "must be in (0, 2]")
    return value
