"""Review and strangers endpoints: what the console's review pages do, through the API.

Roles (faceaccess.roles): reviewing and strangers' actions need admin or operator; reading needs a role.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from access.models import AccessEvent, EventReview, Site
from access.review import strangers
from access.review.reviews import ReviewError, review
from enrollment.models import Person
from faceaccess.api.errors import ApiError

from .base import RoleAPI, positive


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


class EventReviewView(RoleAPI):
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


MAX_STRANGER_DAYS = 3650  # ten years: more would overflow the date arithmetic (a 500), and is no use anyway


class StrangersView(RoleAPI):
    @extend_schema(parameters=[OpenApiParameter("days", int), OpenApiParameter("min", int)],
                   responses=inline_serializer("StrangerGroup", {
                       "count": serializers.IntegerField(), "faces": serializers.ListField(),
                       "events": serializers.ListField(), "first_seen": serializers.DateTimeField(),
                       "last_seen": serializers.DateTimeField(), "cameras": serializers.ListField()}, many=True))
    def get(self, request):
        """Unknown faces seen repeatedly, grouped by similarity (face ids to enroll or dismiss)."""
        days = positive(request.query_params.get("days"), 7, most=MAX_STRANGER_DAYS)
        min_count = positive(request.query_params.get("min"), 2, most=10 ** 9)
        groups = strangers.group_strangers(days=days, min_count=min_count)
        return Response([{"count": len(g.faces), "faces": g.face_ids, "events": [f.event_id for f in g.faces],
                          "first_seen": g.first_seen, "last_seen": g.last_seen, "cameras": g.cameras} for g in groups])


class StrangersActionView(RoleAPI):
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
