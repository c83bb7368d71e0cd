"""People and their face images (staff only)."""

from __future__ import annotations

from django.db.models import Count, Q
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse

from enrollment.embedding import ChoiceError, choose_face
from enrollment.faces import create_face_image
from enrollment.models import FaceImage, Person
from faceaccess import roles
from faceaccess.api.base import RoleAPIMixin
from faceaccess.api.errors import ApiError
from faceaccess.api.uploads import read_image_upload

from .serializers import ChooseFaceSerializer, FaceImageSerializer, PersonSerializer


class PersonViewSet(RoleAPIMixin, viewsets.ModelViewSet):
    """People and their photos. The v1 API routes access's subclass, which adds the sites they may enter."""

    serializer_class = PersonSerializer
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    write_roles = roles.EDITORS  # operators enroll people

    def get_queryset(self):
        queryset = Person.objects.annotate(
            face_count=Count("face_images", distinct=True),
            enrolled_count=Count("face_images", filter=Q(face_images__status="enrolled"), distinct=True),
        ).order_by("name", "id")  # Meta.ordering does not apply to aggregated queries
        params = self.request.query_params
        if params.get("active") in ("true", "false"):
            queryset = queryset.filter(active=params["active"] == "true")
        if params.get("search"):
            term = params["search"]
            queryset = queryset.filter(Q(name__icontains=term) | Q(external_id__icontains=term))
        return queryset

    @extend_schema(
        methods=["POST"],
        summary="Upload a face photo of this person",
        request=inline_serializer("FaceUpload", {"image": serializers.FileField(help_text="JPEG, PNG or WebP.")}),
        responses={202: OpenApiResponse(FaceImageSerializer, description="Stored; embedding queued.")},
    )
    @extend_schema(methods=["GET"], responses=FaceImageSerializer(many=True))
    @action(detail=True, methods=["get", "post"], url_path="faces", url_name="faces",
            parser_classes=[MultiPartParser, FormParser])
    def faces(self, request, pk=None):
        person = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(person.face_images.order_by("id"))
            data = FaceImageSerializer(page, many=True, context={"request": request}).data
            return self.get_paginated_response(data)
        face = create_face_image(person, read_image_upload(request))
        url = reverse("api:faceimage-detail", args=[face.pk], request=request)
        data = FaceImageSerializer(face, context={"request": request}).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": url})


class FaceImageViewSet(
    RoleAPIMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """A face image and its status; deleting it removes its file, crop and embeddings."""

    write_roles = roles.EDITORS

    serializer_class = FaceImageSerializer

    def get_queryset(self):
        queryset = FaceImage.objects.all()
        params = self.request.query_params
        if params.get("person", "").isdigit():
            queryset = queryset.filter(person_id=int(params["person"]))
        if params.get("status") in FaceImage.Status.values:
            queryset = queryset.filter(status=params["status"])
        return queryset

    @extend_schema(
        summary="Enroll one face of a photo with several faces",
        description=(
            "For a photo with several usable faces (``several_faces``, or ``enrolled`` with the dominant one "
            "taken by the worker): enroll face ``face`` (an index in the photo's ``faces``) instead. The "
            "stored embedding of that face replaces the photo's embeddings; no engine is needed."
        ),
        request=ChooseFaceSerializer,
        responses={
            200: OpenApiResponse(FaceImageSerializer, description="Enrolled with the chosen face."),
            400: OpenApiResponse(description="not_several_faces, bad_face_index, face_unusable or invalid."),
            409: OpenApiResponse(description="faces_outdated: found with another model than the current one."),
        },
    )
    @action(detail=True, methods=["post"], url_path="choose", url_name="choose",
            parser_classes=[JSONParser, FormParser, MultiPartParser])
    def choose(self, request, pk=None):
        face_image = self.get_object()
        body = ChooseFaceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            face_image = choose_face(face_image.pk, body.validated_data["face"], request.user.get_username())
        except ChoiceError as exc:
            raise ApiError(exc.code, exc.detail, exc.status) from None
        return Response(FaceImageSerializer(face_image, context={"request": request}).data)
