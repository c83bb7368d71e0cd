"""The second factor at the door through the camera API, with the fake engine (tasks run inline): face + PIN
(right, wrong, somebody else's, missing, locked), face + card, card or face, and that neither a PIN nor a card
number reaches the event, its API, the webhook, the logs or the audit trail."""

from __future__ import annotations

import io
import json
import logging

import pytest

from access.models import AccessEvent
from access.outputs.webhooks import payload
from access.rules import credentials
from access.rules.models import Card, PersonPin

from .conftest import enroll_vector, fake_face, make_person, near, unit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery", "media")]
ALICE_PIN, BOB_PIN, ALICE_CARD = "482913", "771204", "04A1B2C3D41234"


def post(camera, data: bytes, status: int = 200, **fields) -> dict:
    f = io.BytesIO(data)
    f.name = "snap.png"
    response = camera.client().post("/api/v1/snapshots/?wait=2", {"image": f, **fields}, format="multipart")
    assert response.status_code == status, response.content
    return response.json()


@pytest.fixture
def people(fake_pipeline, site):
    alice, bob = make_person("Alice", sites=[site]), make_person("Bob", sites=[site])
    enroll_vector(alice, unit(1))
    enroll_vector(bob, unit(2))
    credentials.set_pin(alice.pk, ALICE_PIN)
    credentials.set_pin(bob.pk, BOB_PIN)
    credentials.add_card(alice.pk, ALICE_CARD)
    return alice, bob


def mode(site, value: str) -> None:
    site.verification = value
    site.save(update_fields=["verification"])


def snap(fake_pipeline, seed: int, who: int) -> bytes:
    return fake_pipeline.register((seed, seed, seed), [fake_face(near(unit(who), 0.4, seed=seed))])


def test_face_and_pin(fake_pipeline, site, camera, people):
    alice, bob = people
    mode(site, "face_pin")
    ok = post(camera, snap(fake_pipeline, 1, 1), pin=ALICE_PIN)
    assert (ok["decision"], ok["person"], ok["second_factor"], ok["verification"]) == \
        ("granted", alice.pk, "PIN ok", "face_pin")
    wrong = post(camera, snap(fake_pipeline, 2, 1), pin="000000")
    assert (wrong["decision"], wrong["reason_code"], wrong["second_factor"]) == ("denied", "pin_wrong", "PIN wrong")
    assert wrong["reason"] == "matched Alice at 0.400 but the PIN is wrong for Alice"
    # Alice's right PIN with Bob's face: denied, and logged as Bob with a wrong PIN.
    swapped = post(camera, snap(fake_pipeline, 3, 2), pin=ALICE_PIN)
    assert (swapped["decision"], swapped["person"], swapped["reason_code"]) == ("denied", bob.pk, "pin_wrong")
    missing = post(camera, snap(fake_pipeline, 4, 1))
    assert (missing["decision"], missing["reason_code"], missing["second_factor"]) == \
        ("denied", "pin_missing", "PIN missing")
    assert missing["reason"] == "matched Alice at 0.400 but PIN required"
    assert PersonPin.objects.get(person=alice).failures == 1  # the wrong one counts; a right one resets it
    assert PersonPin.objects.get(person=bob).failures == 1


def test_wrong_pins_lock_the_pin_until_an_admin_unlocks_it(fake_pipeline, site, camera, people, settings):
    alice, _ = people
    settings.FACEACCESS_PIN_FAILURE_LIMIT = 3
    mode(site, "face_pin")
    for seed in (11, 12, 13):
        assert post(camera, snap(fake_pipeline, seed, 1), pin="111111")["reason_code"] == "pin_wrong"
    locked = post(camera, snap(fake_pipeline, 14, 1), pin=ALICE_PIN)
    assert (locked["decision"], locked["reason_code"], locked["second_factor"]) == \
        ("denied", "pin_locked", "PIN locked")
    assert PersonPin.objects.get(person=alice).locked_at is not None
    assert credentials.unlock_pin(alice.pk)
    assert post(camera, snap(fake_pipeline, 15, 1), pin=ALICE_PIN)["decision"] == "granted"


def test_face_and_card(fake_pipeline, site, camera, people):
    alice, bob = people
    mode(site, "face_card")
    ok = post(camera, snap(fake_pipeline, 21, 1), card=ALICE_CARD)
    assert (ok["decision"], ok["second_factor"]) == ("granted", "card …1234")
    theirs = post(camera, snap(fake_pipeline, 22, 2), card=ALICE_CARD)
    assert (theirs["decision"], theirs["person"], theirs["reason_code"]) == ("denied", bob.pk, "card_mismatch")
    missing = post(camera, snap(fake_pipeline, 23, 1))
    assert (missing["decision"], missing["reason_code"], missing["second_factor"]) == \
        ("denied", "card_missing", "card missing")


def test_card_or_face(fake_pipeline, site, camera, people):
    alice, _ = people
    mode(site, "card_or_face")
    stranger = fake_pipeline.register((31, 31, 31), [fake_face(unit(99))])
    by_card = post(camera, stranger, card=ALICE_CARD)
    assert (by_card["decision"], by_card["person"], by_card["reason"]) == ("granted", alice.pk, "card …1234 of Alice")
    assert post(camera, snap(fake_pipeline, 32, 1))["decision"] == "granted"  # the face alone
    unknown = post(camera, fake_pipeline.register((33, 33, 33), []), card="99990000")
    assert (unknown["decision"], unknown["reason_code"]) == ("unknown", "card_unknown")


def test_card_numbers_are_unique_across_people(people):
    _, bob = people
    with pytest.raises(credentials.CredentialError, match="already given"):
        credentials.add_card(bob.pk, ALICE_CARD.lower())
    assert Card.objects.count() == 1


def test_a_malformed_pin_or_card_is_a_400_that_stores_nothing_and_repeats_nothing(fake_pipeline, site, camera,
                                                                                   people):
    mode(site, "face_pin")
    for field, value in (("pin", "12ab"), ("pin", "1" * 20), ("card", "x")):
        body = post(camera, snap(fake_pipeline, 41, 1), status=400, **{field: value})
        assert body["error"] == f"invalid_{field}" and value not in json.dumps(body)
    assert AccessEvent.objects.count() == 0


def test_no_pin_or_card_number_in_events_webhooks_logs_or_the_audit_trail(fake_pipeline, site, camera, people,
                                                                          caplog, owner_client, settings):
    from auditlog.models import LogEntry

    from access.outputs.mqtt import event_payload as mqtt_event_payload

    caplog.set_level(logging.DEBUG)
    mode(site, "face_card")
    post(camera, snap(fake_pipeline, 51, 1), card=ALICE_CARD, pin=ALICE_PIN)
    mode(site, "face_pin")
    post(camera, snap(fake_pipeline, 52, 1), pin=ALICE_PIN, card=ALICE_CARD)
    def text(value) -> str:
        return json.dumps(value, default=str, ensure_ascii=False)

    events = owner_client.get("/api/v1/events/")
    assert events.status_code == 200
    texts = [text(payload(e)) + text(mqtt_event_payload(e)) for e in AccessEvent.objects.all()]  # webhook, MQTT
    texts += [text(list(AccessEvent.objects.values())), text(events.json())]
    texts += [r.getMessage() for r in caplog.records]
    texts += [text(e.changes) + str(e.changes_text) for e in LogEntry.objects.all()]
    everything = "\n".join(texts)
    assert ALICE_PIN not in everything and ALICE_CARD not in everything and ALICE_CARD[:-4] not in everything
    assert "PIN ok" in everything and "card …1234" in everything  # the outcomes are there
    assert not any(PersonPin.objects.filter(pin_hash__contains=ALICE_PIN))
    stored = PersonPin.objects.get(person=people[0]).pin_hash
    assert stored.startswith(f"pbkdf2_sha256${settings.FACEACCESS_PIN_HASH_ITERATIONS}$")  # a slow hash, salted


def test_a_card_alone_on_a_card_or_face_door_is_decided_without_a_photo(fake_pipeline, site, camera, people):
    alice, _ = people
    calls = fake_pipeline.calls
    mode(site, "face")
    refused = camera.client().post("/api/v1/snapshots/?wait=2", {"card": ALICE_CARD}, format="multipart")
    assert refused.status_code == 400 and refused.json()["error"] == "missing_image"  # a face door needs a face
    mode(site, "card_or_face")
    alone = camera.client().post("/api/v1/snapshots/?wait=2", {"card": ALICE_CARD, "idempotency_key": "c1"},
                                 format="multipart")
    assert alone.status_code == 200, alone.content
    body = alone.json()
    assert (body["decision"], body["person"], body["second_factor"], body["faces"]) == \
        ("granted", alice.pk, "card …1234", [])
    again = camera.client().post("/api/v1/snapshots/?wait=2", {"card": ALICE_CARD, "idempotency_key": "c1"},
                                 format="multipart")
    assert again.json()["id"] == body["id"] and again["Idempotent-Replayed"] == "true"
    unknown = camera.client().post("/api/v1/snapshots/?wait=2", {"card": "12345678"}, format="multipart").json()
    assert (unknown["decision"], unknown["reason_code"], unknown["person"]) == ("unknown", "card_unknown", None)
    assert fake_pipeline.calls == calls  # the engine never ran
    assert AccessEvent.objects.count() == 2 and not any(e.snapshot for e in AccessEvent.objects.all())


def test_the_what_if_replay_decides_with_the_stored_credential_check(fake_pipeline, site, camera, people):
    from access.review.tuning import what_if

    mode(site, "face_pin")
    assert post(camera, snap(fake_pipeline, 61, 1), pin=ALICE_PIN)["decision"] == "granted"
    assert post(camera, snap(fake_pipeline, 62, 1))["decision"] == "denied"  # PIN missing
    replay = what_if(site, 0.9)
    assert replay.examined == 2 and replay.changed == []  # the PIN's outcome replays, the PIN itself is not needed
    tighter = what_if(site, 0.3)  # at 0.3 the faces (0.4 away) match nobody: both change to unknown
    assert {c["now"] for c in tighter.changed} == {"unknown"} and len(tighter.changed) == 2


def test_somebody_behind_the_person_at_the_keypad_is_not_counted_wrong(fake_pipeline, site, camera, people):
    alice, bob = people
    mode(site, "face_pin")
    both = fake_pipeline.register((71, 71, 71), [fake_face(near(unit(2), 0.3, seed=71)),  # Bob, nearer
                                                 fake_face(near(unit(1), 0.4, seed=72))])  # Alice, at the keypad
    body = post(camera, both, pin=ALICE_PIN)
    assert (body["decision"], body["person"]) == ("granted", alice.pk)
    assert PersonPin.objects.get(person=bob).failures == 0
    nobody = fake_pipeline.register((73, 73, 73), [fake_face(near(unit(2), 0.3, seed=73)),
                                                   fake_face(near(unit(1), 0.4, seed=74))])
    assert post(camera, nobody, pin="000000")["decision"] == "denied"
    assert (PersonPin.objects.get(person=bob).failures, PersonPin.objects.get(person=alice).failures) == (1, 0)


def test_a_retry_of_a_snapshot_the_queue_refused_brings_its_pin_along(fake_pipeline, site, camera, people,
                                                                     monkeypatch):
    from access.snapshots import intake

    real, sent = intake.send, []

    def broker_down_once(name, *args, **kwargs):
        sent.append(args)
        if len(sent) == 1:
            raise ConnectionError("broker down")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(intake, "send", broker_down_once)
    mode(site, "face_pin")
    data = snap(fake_pipeline, 81, 1)
    assert post(camera, data, status=503, pin=ALICE_PIN, idempotency_key="k1")["error"] == "queue_unavailable"
    retried = post(camera, data, pin=ALICE_PIN, idempotency_key="k1")
    assert (retried["decision"], retried["second_factor"]) == ("granted", "PIN ok")
    assert all(ALICE_PIN not in str(args) for args in sent)  # sealed on its way, never in clear
