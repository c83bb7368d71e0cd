"""Access rules through the API: groups, access levels (with their weekly schedule), holidays per site, people's
door credentials (PIN status and lockout, cards: never a PIN or a card number back) and where and when a person
may enter. Everyone with a role reads; admins change."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.response import Response

from access.entry import entry_rows
from access.models import Camera, Site
from access.rules import credentials, schedule
from access.rules.models import AccessLevel, Card, Holiday, PersonGroup, PersonPin
from enrollment.models import Person
from faceaccess import roles
from faceaccess.api.base import RoleAPIMixin, record_actor
from faceaccess.api.errors import ApiError
from faceaccess.api.serializers import OrderedValidityMixin

from .base import RoleAPI


class PersonGroupSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:persongroup-detail")
    members = serializers.PrimaryKeyRelatedField(many=True, queryset=Person.objects.all(), required=False)

    class Meta:
        model = PersonGroup
        fields = ["id", "url", "name", "description", "members", "created_at"]
        read_only_fields = ["created_at"]


class AccessLevelSerializer(OrderedValidityMixin, serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:accesslevel-detail")
    schedule = serializers.JSONField(
        required=False, help_text='Ranges per weekday in each site\'s local time: {"mon": [["18:00", "22:00"]], '
        '"fri": [["22:00", "02:00"]]}; an end not after its start crosses midnight (the range belongs to the day it '
        'starts); "00:00"-"00:00" is the whole day; {} or absent: any time.')
    summary = serializers.SerializerMethodField(help_text='The level in words: "allowed Mon-Fri 18:00-22:00".')
    sites = serializers.PrimaryKeyRelatedField(many=True, queryset=Site.objects.all(), required=False,
                                               help_text="Doors: every camera of these sites.")
    cameras = serializers.PrimaryKeyRelatedField(many=True, queryset=Camera.objects.all(), required=False,
                                                 help_text="Doors: these cameras.")
    people = serializers.PrimaryKeyRelatedField(many=True, queryset=Person.objects.all(), required=False)
    groups = serializers.PrimaryKeyRelatedField(many=True, queryset=PersonGroup.objects.all(), required=False)

    class Meta:
        model = AccessLevel
        fields = ["id", "url", "name", "description", "schedule", "summary", "holidays_too", "valid_from",
                  "valid_until", "sites", "cameras", "people", "groups", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def get_summary(self, level: AccessLevel) -> str:
        return level.describe()

    def validate_schedule(self, value: object) -> dict:
        try:
            return schedule.dump(schedule.parse(value))  # stored in one normal form
        except schedule.ScheduleError as exc:
            raise serializers.ValidationError(str(exc)) from None


class HolidaySerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="api:holiday-detail")

    class Meta:
        model = Holiday
        fields = ["id", "url", "site", "date", "name"]


class PersonGroupViewSet(RoleAPIMixin, viewsets.ModelViewSet):
    """Groups of people; a person may be in several. ``members``: person ids."""

    serializer_class = PersonGroupSerializer
    queryset = PersonGroup.objects.prefetch_related("members")


class AccessLevelViewSet(RoleAPIMixin, viewsets.ModelViewSet):
    """Access levels: doors (sites, cameras) x a weekly schedule x optional validity dates, granted to people and
    groups. A person with a grant of a site (``people.sites``) enters it at any time; otherwise their levels for
    the door decide. ``?site=<id>``: the levels with a door at that site."""

    serializer_class = AccessLevelSerializer

    def get_queryset(self):
        queryset = AccessLevel.objects.prefetch_related("sites", "cameras", "people", "groups")
        site = self.request.query_params.get("site", "")
        if site.isdigit():
            queryset = (queryset.filter(sites=int(site)) | queryset.filter(cameras__site=int(site))).distinct()
        return queryset


class HolidayViewSet(RoleAPIMixin, viewsets.ModelViewSet):
    """A site's holidays: on these dates only the levels marked ``holidays_too`` apply there. ``?site=<id>``."""

    serializer_class = HolidaySerializer

    def get_queryset(self):
        queryset = Holiday.objects.all()
        site = self.request.query_params.get("site", "")
        return queryset.filter(site_id=int(site)) if site.isdigit() else queryset


# ---------------------------------------------------------------- a person's credentials and entries -------------

def credential_status(person: Person) -> dict:
    """What may be shown of a person's credentials: whether a PIN is set, its wrong tries and lockout, and the
    cards by their last 4 digits."""
    pin = PersonPin.objects.filter(person=person).first()
    return {
        "person": person.pk,
        "has_pin": pin is not None,
        "pin_failures": pin.failures if pin else 0,
        "pin_locked": bool(pin and pin.locked_at),
        "pin_locked_at": pin.locked_at if pin else None,
        "cards": [{"id": c.pk, "last4": c.last4, "label": c.label, "created_at": c.created_at}
                  for c in Card.objects.filter(person=person)],
    }


CredentialStatus = inline_serializer("CredentialStatus", {
    "person": serializers.IntegerField(), "has_pin": serializers.BooleanField(),
    "pin_failures": serializers.IntegerField(), "pin_locked": serializers.BooleanField(),
    "pin_locked_at": serializers.DateTimeField(allow_null=True),
    "cards": serializers.ListField(child=serializers.DictField()),
})


class PersonCredentialsView(RoleAPI):
    """``GET``: a person's PIN status (set? wrong tries, locked?) and cards (last 4 digits). ``POST`` (admins)
    ``{"pin": "4829"}`` sets the PIN (4-12 digits; a new PIN ends a lockout), ``{"card": "04A1...", "label": ""}``
    adds a card (unique across people), ``{"unlock": true}`` ends a PIN lockout. ``DELETE ?pin=1`` removes the PIN,
    ``DELETE ?card=<id>`` a card. The PIN and the card number are never returned."""

    write_roles = roles.ADMINS

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        record_actor(request.user)  # the audit trail says who set a PIN, gave a card, unlocked

    @extend_schema(responses={200: CredentialStatus})
    def get(self, request, pk: int):
        return Response(credential_status(get_object_or_404(Person, pk=pk)))

    @extend_schema(request=inline_serializer("CredentialChange", {
        "pin": serializers.CharField(required=False), "card": serializers.CharField(required=False),
        "label": serializers.CharField(required=False), "unlock": serializers.BooleanField(required=False)}),
        responses={200: CredentialStatus})
    def post(self, request, pk: int):
        person = get_object_or_404(Person, pk=pk)
        data = request.data
        if not any(k in data for k in ("pin", "card", "unlock")):
            raise ApiError("invalid_credential", "send one of pin, card or unlock")
        try:
            with transaction.atomic():
                if data.get("pin") not in (None, ""):
                    credentials.set_pin(person.pk, data["pin"])
                if data.get("card") not in (None, ""):
                    credentials.add_card(person.pk, data["card"], str(data.get("label") or "")[:100])
                if str(data.get("unlock", "")).lower() in ("1", "true"):
                    credentials.unlock_pin(person.pk)
        except credentials.CredentialError as exc:
            raise ApiError("invalid_credential", str(exc)) from None
        except IntegrityError:  # two admins adding the same card at once
            raise ApiError("invalid_credential", "this card number is already given to somebody") from None
        return Response(credential_status(person))

    @extend_schema(parameters=[OpenApiParameter("pin", bool), OpenApiParameter("card", int)],
                   responses={200: CredentialStatus})
    def delete(self, request, pk: int):
        person = get_object_or_404(Person, pk=pk)
        if request.query_params.get("pin") in ("1", "true"):
            credentials.clear_pin(person.pk)
        card = request.query_params.get("card", "")
        if card.isdigit():
            get_object_or_404(Card, pk=int(card), person=person).delete()
        return Response(credential_status(person))


class PinLockoutsView(RoleAPI):
    """The people whose door PIN is locked after too many wrong PINs (unlock: POST their credentials
    ``{"unlock": true}``)."""

    write_roles = roles.ADMINS

    @extend_schema(responses={200: inline_serializer("PinLockout", {
        "person": serializers.IntegerField(), "name": serializers.CharField(),
        "failures": serializers.IntegerField(), "locked_at": serializers.DateTimeField()}, many=True)})
    def get(self, request):
        rows = PersonPin.objects.exclude(locked_at=None).select_related("person").order_by("-locked_at")
        return Response([{"person": r.person_id, "name": r.person.name, "failures": r.failures,
                          "locked_at": r.locked_at} for r in rows])


class PersonAccessView(RoleAPI):
    """Where and when the person may enter: one row per door (a site, or one camera) and way in (a site grant at
    any time, or an access level with its schedule, directly or through a group), with the door's second factor."""

    @extend_schema(responses={200: inline_serializer("EntryRow", {
        "site_id": serializers.IntegerField(), "site": serializers.CharField(),
        "camera_id": serializers.IntegerField(allow_null=True), "camera": serializers.CharField(),
        "how": serializers.CharField(), "via": serializers.CharField(), "when": serializers.CharField(),
        "valid": serializers.CharField(), "verification": serializers.CharField(),
        "timezone": serializers.CharField(), "note": serializers.CharField()}, many=True)})
    def get(self, request, pk: int):
        return Response([row.as_dict() for row in entry_rows(get_object_or_404(Person, pk=pk))])
