"""People's names never go into stored text: the access log stores ``{person:<id>}`` and renders names
when it is read, so erasing a person leaves no name behind ("erased person" is shown instead)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from enrollment.models import Person

TOKEN = re.compile(r"\{person:(\d+)\}")
ERASED = "erased person"


def person_token(person_id: int) -> str:
    return f"{{person:{int(person_id)}}}"


def names_for(texts: Iterable[str], known: dict[int, str] | None = None) -> dict[int, str]:
    """The names of the people the texts' tokens name; ``known`` names (e.g. an event's loaded person) are not
    looked up again."""
    names = dict(known or {})
    ids = {int(m) for text in texts if text for m in TOKEN.findall(text)} - set(names)
    if ids:
        names.update(Person.objects.filter(pk__in=ids).values_list("pk", "name"))
    return names


def render(text: str, names: dict[int, str] | None = None) -> str:
    """``text`` with every person token replaced by the name (or "erased person")."""
    if not text or "{person:" not in text:
        return text
    names = names_for([text]) if names is None else names
    return TOKEN.sub(lambda m: names.get(int(m.group(1)), ERASED), text)
