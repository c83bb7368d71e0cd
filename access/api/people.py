"""People through the API: enrollment's view plus the sites each person may enter, and erasure."""

from __future__ import annotations

from rest_framework.exceptions import PermissionDenied

from access.lifecycle.erasure import erase_person
from enrollment.api import views as people
from faceaccess import roles

from .serializers import PersonWithSitesSerializer


class PersonViewSet(people.PersonViewSet):
    """People (enrollment's view) plus the sites each may enter; ``?site=<id>`` lists a site's people.

    ``DELETE`` erases the person (photos, embeddings; the log and the audit trail keep their entries without the
    name); ``DELETE ?with_history=true`` also removes the snapshots in which they were recognised."""

    serializer_class = PersonWithSitesSerializer
    write_roles = roles.EDITORS

    def perform_destroy(self, instance) -> None:
        with_history = self.request.query_params.get("with_history") in ("1", "true")
        if with_history and roles.role_of(self.request.user) != roles.ADMIN:
            # Erasing door snapshots removes evidence: admins only (an operator may still delete the person).
            raise PermissionDenied("only an admin may erase a person's access history")
        erase_person(instance, with_history=with_history)

    def get_queryset(self):
        queryset = super().get_queryset().prefetch_related("sites")
        site = self.request.query_params.get("site", "")
        return queryset.filter(sites=int(site)) if site.isdigit() else queryset
