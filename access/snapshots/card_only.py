"""A card without a photo, on a "card or face" door (README "Access rules"): nothing for the engine to look at, so
the web process decides it at once with the same pure decision (no faces, the card's holder and their rules),
stores the event already decided and runs the door's step (debounce, webhook) as the worker would."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import decisions
from ..decision_inputs import camera_rules, person_facts, site_rules
from ..models import AccessEvent, Camera
from ..outputs import door
from ..rules import credentials, factors


def decide_card(camera: Camera, card: str, key: str, captured_at: dt.datetime | None) -> tuple[AccessEvent, bool]:
    """The decided event of a card shown alone (``card``: a clean card number), and whether it was created (False:
    a retry with the same idempotency key)."""
    now = timezone.now()
    holder = credentials.card_holder(card)
    check = factors.CredentialCheck(None, card[-4:], holder)
    site, door_rules = site_rules(camera.site), camera_rules(camera)
    people = person_facts({holder} if holder is not None else set(), site_id=camera.site_id)
    outcome = decisions.decide([], site, door_rules, people, now, check)
    repeat = (door.first_granted_within(camera, outcome.person_id, now, 0)
              if outcome.decision == decisions.GRANTED else None)
    mode = door_rules.mode(site)
    event = AccessEvent(
        camera=camera, site_id=camera.site_id, received_at=now, captured_at=captured_at, idempotency_key=key,
        status=AccessEvent.Status.DONE, decision=outcome.decision, reason=outcome.reason, reason_code=outcome.code,
        person_id=outcome.person_id, processed_at=timezone.now(), latency_ms=0.0, threshold=site.threshold,
        verification=mode, second_factor=check.summary(mode, outcome.person_id), credential=check.stored(),
        repeat_of_id=repeat)
    try:
        with transaction.atomic():
            event.save()
    except IntegrityError:
        existing = AccessEvent.objects.filter(camera=camera, idempotency_key=key).first() if key else None
        if existing is None:
            raise
        return existing, False
    door.decided(event.pk, camera, repeat)
    return event, True
