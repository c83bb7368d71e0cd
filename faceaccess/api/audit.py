"""``GET /api/v1/audit/``: the audit trail (django-auditlog) of admin actions: who, when, what, before/after."""

from __future__ import annotations

from auditlog.models import LogEntry
from rest_framework import serializers, viewsets

from faceaccess import audit, roles

from .base import RoleAPIMixin


class LogEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.get_username", read_only=True, default=None)
    model = serializers.CharField(source="content_type.model", read_only=True)
    action = serializers.SerializerMethodField()
    what = serializers.SerializerMethodField(help_text="create / update / delete, or what happened: review, "
                                             "'face picked', 'webhook secret rotated', 'person erased'...")
    changes = serializers.JSONField(source="changes_dict", read_only=True)

    class Meta:
        model = LogEntry
        fields = ["id", "timestamp", "actor", "action", "what", "model", "object_pk", "object_repr", "changes",
                  "remote_addr"]
        read_only_fields = fields

    def get_what(self, entry: LogEntry) -> str:
        return audit.what_of(entry)

    def get_action(self, entry: LogEntry) -> str:
        return {0: "create", 1: "update", 2: "delete", 3: "access"}.get(entry.action, str(entry.action))


class AuditLogViewSet(RoleAPIMixin, viewsets.ReadOnlyModelViewSet):
    """Admins and auditors; ``?model=site`` (or camera, person, accessgrant), ``?object=<id>``."""

    serializer_class = LogEntrySerializer
    read_roles = frozenset({roles.ADMIN, roles.AUDITOR})

    def get_queryset(self):
        entries = LogEntry.objects.select_related("actor", "content_type").order_by("-timestamp", "-id")
        params = self.request.query_params
        if params.get("model"):
            entries = entries.filter(content_type__model=params["model"].lower())
        if params.get("object"):
            entries = entries.filter(object_pk=params["object"])
        return entries
