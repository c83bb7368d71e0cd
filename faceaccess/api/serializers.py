"""Serializer plumbing shared by the apps' APIs."""

from __future__ import annotations

import copy
from typing import Any

from rest_framework import serializers


class BuiltOnceModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose fields are built from the model once per class, then copied.

    DRF introspects the model (field mapping, validators, labels) for every serializer instance: for an access
    event with its faces that was ~55% of serializing it, about 5 ms of every door's answer. The fields depend
    only on the class (Meta and the declared fields), so the unbound fields are kept per class and each instance
    gets a deep copy, as DRF itself does with declared fields.
    """

    def get_fields(self) -> dict[str, Any]:
        cls = type(self)
        built = cls.__dict__.get("_fields_built_once")
        if built is None:
            built = super().get_fields()
            cls._fields_built_once = built
        return copy.deepcopy(built)


class OrderedValidityMixin:
    """A serializer of a row with a validity window (``valid_from`` .. ``valid_until``): a 400 naming the field
    when the window ends before it starts (the database's constraint, faceaccess.validity, would give a 500)."""

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        start = attrs.get("valid_from", getattr(self.instance, "valid_from", None))
        end = attrs.get("valid_until", getattr(self.instance, "valid_until", None))
        if start and end and start > end:
            raise serializers.ValidationError({"valid_until": "must not be before valid_from"})
        return attrs
