"""The audit trail (django-auditlog's LogEntry) as the product uses it: append-only, never holding a secret.

- ``SECRET_FIELD`` names what must never be written there (keys, webhook secrets, stream passwords, PIN hashes,
  tokens): a ``pre_save`` guard drops such fields from every entry, whatever model registered them, so a new
  table with a secret cannot leak it by forgetting ``exclude_fields``.
- ``record`` writes an entry for an action that is not a plain row change (a review, a face pick, a key
  rotation, an erasure), with ``additional_data["what"]`` saying what happened.
- ``redact`` replaces personal data in old entries with a placeholder: erasure keeps the entries (who did
  what, when) and removes only the name. Nothing in the product deletes an entry.
"""

from __future__ import annotations

import json
import re
from typing import Any

from auditlog.models import LogEntry
from django.db.models import Model, Q
from django.db.models.signals import pre_save
from django.dispatch import receiver

SECRET_FIELD = re.compile(r"secret|password|passwd|key_hash|pin_hash|^pin$|token|credential|digest|salt",
                          re.IGNORECASE)
PLACEHOLDER = "[erased]"
ACTIONS = {LogEntry.Action.CREATE: "create", LogEntry.Action.UPDATE: "update", LogEntry.Action.DELETE: "delete",
           LogEntry.Action.ACCESS: "access"}


def without_secrets(changes: Any) -> Any:
    """``changes`` less every field whose name says it holds a secret."""
    if isinstance(changes, dict):
        return {k: without_secrets(v) for k, v in changes.items() if not SECRET_FIELD.search(str(k))}
    return changes


@receiver(pre_save, sender=LogEntry, dispatch_uid="faceaccess.audit.no_secrets")
def _drop_secrets(sender, instance: LogEntry, **kwargs) -> None:
    instance.changes = without_secrets(instance.changes)
    instance.serialized_data = without_secrets(instance.serialized_data)
    instance.additional_data = without_secrets(instance.additional_data)
    if instance.changes_text and SECRET_FIELD.search(instance.changes_text):
        instance.changes_text = ""  # the text form is a copy of `changes`; the JSON is what is read


def record(instance: Model, what: str, changes: dict[str, Any] | None = None,
           action: int = LogEntry.Action.UPDATE, **details: Any) -> LogEntry:
    """One entry for an action on ``instance``; the actor comes from auditlog's request context (the console's
    and the API's user), or stays empty for the system."""
    return LogEntry.objects.log_create(
        instance, force_log=True, action=action,
        changes={k: [None if b is None else str(b), None if a is None else str(a)]
                 for k, (b, a) in (changes or {}).items()},
        additional_data={"what": what, **details})


def what_of(entry: LogEntry) -> str:
    """A word for the Activity page and the API: ``review``, ``face picked``... or create / update / delete."""
    extra = entry.additional_data if isinstance(entry.additional_data, dict) else {}
    return str(extra.get("what") or ACTIONS.get(entry.action, str(entry.action)))


def _replace(value: Any, words: list[str]) -> Any:
    if isinstance(value, str):
        for word in words:
            # Whole words only: erasing "Ann" must not turn another person's "Anna" or the site "Annex" into
            # "[erased]a" in their entries.
            value = re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", PLACEHOLDER, value, flags=re.IGNORECASE)
        return value
    if isinstance(value, list):
        return [_replace(v, words) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, words) for k, v in value.items()}
    return value


def redact(words: list[str], also: Q | None = None) -> int:
    """Replace every occurrence of ``words`` (a name, a badge id) in the audit trail with the placeholder, in the
    entries that hold them and in those ``also`` selects; the entries stay. Returns how many were changed."""
    words = sorted({w for w in words if w and len(w.strip()) >= 2}, key=len, reverse=True)
    match = also or Q(pk__in=[])
    for word in words:
        match |= Q(object_repr__icontains=word) | Q(changes_text__icontains=word) | Q(changes__icontains=word)
        match |= Q(additional_data__icontains=word) | Q(serialized_data__icontains=word)
    changed = 0
    for entry in LogEntry.objects.filter(match):
        before = json.dumps([entry.object_repr, entry.changes, entry.changes_text, entry.additional_data,
                             entry.serialized_data], sort_keys=True)
        entry.object_repr = _replace(entry.object_repr, words)
        entry.changes = _replace(entry.changes, words)
        entry.changes_text = _replace(entry.changes_text, words)
        entry.additional_data = _replace(entry.additional_data, words)
        entry.serialized_data = _replace(entry.serialized_data, words)
        if json.dumps([entry.object_repr, entry.changes, entry.changes_text, entry.additional_data,
                       entry.serialized_data], sort_keys=True) != before:
            entry.save(update_fields=["object_repr", "changes", "changes_text", "additional_data", "serialized_data"])
            changed += 1
    return changed


def redact_fields(entries, fields: set[str]) -> int:
    """In ``entries`` (a LogEntry queryset), every value of ``fields`` becomes the placeholder (a person's notes
    may name anybody), and so does the entry's text form of the object."""
    changed = 0
    for entry in entries:
        changes = entry.changes if isinstance(entry.changes, dict) else {}
        entry.changes = {k: ([PLACEHOLDER if x not in (None, "None", "") else x for x in v] if k in fields and
                             isinstance(v, list) else v) for k, v in changes.items()}
        entry.object_repr, entry.changes_text, entry.serialized_data = PLACEHOLDER, "", None
        entry.save(update_fields=["object_repr", "changes", "changes_text", "serialized_data"])
        changed += 1
    return changed
