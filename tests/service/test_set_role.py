"""manage.py set_role gives exactly one role."""

import io

import pytest
from django.core.management import CommandError, call_command

from faceaccess import roles

pytestmark = pytest.mark.django_db


def test_set_role_replaces_the_previous_one(django_user_model):
    call_command("set_role", "zed", "operator", "--create", stdout=io.StringIO())
    zed = django_user_model.objects.get(username="zed")
    assert roles.role_of(zed) == "operator"
    call_command("set_role", "zed", "auditor", stdout=io.StringIO())
    zed = django_user_model.objects.get(username="zed")
    assert roles.role_of(zed) == "auditor" and zed.groups.count() == 1
    call_command("set_role", "zed", "none", stdout=io.StringIO())
    assert roles.role_of(django_user_model.objects.get(username="zed")) is None
    with pytest.raises(CommandError, match="no user"):
        call_command("set_role", "ghost", "admin")
