"""Door credentials: a person's PIN (only a slow hash, Django's PBKDF2 hasher; wrong PINs in a row lock it) and
card numbers (SHA-256, unique across people, last 4 digits shown).

A PIN or card number that came with a snapshot travels from the web process to the worker sealed (Fernet, a key
derived from SECRET_KEY) in the task message's header, never in clear and never stored: the worker unseals it,
checks it, and keeps only the outcome ("PIN ok / wrong / missing / locked", the card's last 4 digits)."""

from __future__ import annotations

import base64
import hashlib
import re

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import transaction
from django.utils import timezone

from . import factors
from .models import Card, PersonPin

PIN_RE = re.compile(r"^\d{4,12}$")
CARD_RE = re.compile(r"^[0-9A-Za-z]{4,64}$")
SEAL_TTL_S = 900  # a sealed credential older than this is not believed (a message stuck in a queue that long)


class CredentialError(ValueError):
    """A PIN or card number that is not one: the message says what a valid one looks like (never echoes it)."""


def clean_pin(pin: object) -> str:
    text = str(pin or "").strip()
    if not PIN_RE.match(text):
        raise CredentialError("a PIN is 4 to 12 digits")
    return text


def clean_card(number: object) -> str:
    text = re.sub(r"[\s-]", "", str(number or ""))
    if not CARD_RE.match(text):
        raise CredentialError("a card number is 4 to 64 letters or digits (spaces and dashes are ignored)")
    return text.upper()


def hash_pin(pin: str) -> str:
    """Django's PBKDF2-SHA256 hash of the PIN with FACEACCESS_PIN_HASH_ITERATIONS rounds (the count is stored in
    the hash, so a changed setting applies to PINs set afterwards). Not the login passwords' million rounds: the
    PIN is checked on the door's path, and what protects a 4-12 digit PIN online is the lockout."""
    hasher = PBKDF2PasswordHasher()
    return hasher.encode(pin, hasher.salt(), iterations=settings.FACEACCESS_PIN_HASH_ITERATIONS)


def pin_matches(pin: str, encoded: str) -> bool:
    try:
        return PBKDF2PasswordHasher().verify(pin, encoded)
    except (ValueError, TypeError, AssertionError):  # not a hash of ours (edited by hand): never a match
        return False


def card_hash(number: str) -> str:
    return hashlib.sha256(clean_card(number).encode()).hexdigest()


# ---------------------------------------------------------------- setting them (admins) --------------------------

def set_pin(person_id: int, pin: str) -> PersonPin:
    """Set (or replace) the person's PIN; a new PIN also ends a lockout."""
    hashed = hash_pin(clean_pin(pin))
    row, _ = PersonPin.objects.update_or_create(
        person_id=person_id, defaults={"pin_hash": hashed, "failures": 0, "locked_at": None})
    return row


def clear_pin(person_id: int) -> bool:
    return PersonPin.objects.filter(person_id=person_id).delete()[0] > 0


def unlock_pin(person_id: int) -> bool:
    """End a PIN lockout (admins); True when there was one."""
    row = PersonPin.objects.filter(person_id=person_id).exclude(locked_at=None).first()
    if row is None:
        return False
    row.failures, row.locked_at = 0, None
    row.save(update_fields=["failures", "locked_at"])  # a save, not an UPDATE: the audit trail records who unlocked
    return True


def add_card(person_id: int, number: str, label: str = "") -> Card:
    """Give the person a card; CredentialError when the number is not one or another person (or this one)
    already holds it."""
    digest = card_hash(number)
    if Card.objects.filter(number_hash=digest).exists():
        raise CredentialError("this card number is already given to somebody")
    return Card.objects.create(person_id=person_id, number_hash=digest, last4=clean_card(number)[-4:], label=label)


# ---------------------------------------------------------------- checking them (worker) -------------------------

def card_holder(number: str) -> int | None:
    try:
        digest = card_hash(number)
    except CredentialError:
        return None
    return Card.objects.filter(number_hash=digest).values_list("person_id", flat=True).first()


def check_pin(person_id: int, pin: str, count: bool = True) -> str:
    """The PIN's outcome for this person (factors.PIN_OK / WRONG / LOCKED / UNSET). With ``count``, a wrong one
    counts towards the lockout (FACEACCESS_PIN_FAILURE_LIMIT in a row); a right one resets the count; a locked PIN
    is not even compared."""
    with transaction.atomic():
        row = PersonPin.objects.select_for_update().filter(person_id=person_id).first()
        if row is None:
            return factors.PIN_UNSET
        if row.locked_at is not None:
            return factors.PIN_LOCKED
        if pin_matches(pin, row.pin_hash):
            if row.failures:
                PersonPin.objects.filter(pk=row.pk).update(failures=0)
            return factors.PIN_OK
        if count:
            count_failure(row.pk)
        return factors.PIN_WRONG


def count_failure(pin_pk: int) -> None:
    row = PersonPin.objects.select_for_update().get(pk=pin_pk)
    failures = row.failures + 1
    locked = timezone.now() if failures >= settings.FACEACCESS_PIN_FAILURE_LIMIT else None
    PersonPin.objects.filter(pk=row.pk).update(failures=failures, locked_at=locked)


def check(sealed: str | None, candidates: list[int]) -> factors.CredentialCheck:
    """What the sealed credential of a snapshot says. The PIN is compared with the people the faces matched,
    nearest first (``candidates``), until it is one's; when it is nobody's, only the nearest one's PIN counts the
    wrong try (somebody standing behind the person at the keypad is not locked out by their typo)."""
    pin, card = unseal(sealed)
    pins = None
    if pin is not None:
        pins = {}
        for pid in candidates:
            pins[pid] = check_pin(pid, pin, count=False)
            if pins[pid] == factors.PIN_OK:
                break
        if candidates and factors.PIN_OK not in pins.values() and pins[candidates[0]] == factors.PIN_WRONG:
            with transaction.atomic():
                row = PersonPin.objects.filter(person_id=candidates[0]).values_list("pk", flat=True).first()
                if row is not None:
                    count_failure(row)
    if card is None:
        return factors.CredentialCheck(pins)
    return factors.CredentialCheck(pins, card[-4:], card_holder(card))


# ---------------------------------------------------------------- the trip through the broker --------------------

def _fernet() -> Fernet:
    key = hashlib.sha256(b"faceaccess door credential\0" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(pin: str | None, card: str | None) -> str | None:
    """The credential, encrypted for the worker (None when there is none)."""
    if not pin and not card:
        return None
    body = f"{pin or ''}\n{card or ''}".encode()
    return _fernet().encrypt(body).decode()


def unseal(sealed: str | None) -> tuple[str | None, str | None]:
    """(PIN, card number) from :func:`seal`; (None, None) when nothing (believable) came."""
    if not sealed:
        return None, None
    try:
        pin, card = _fernet().decrypt(sealed.encode(), ttl=SEAL_TTL_S).decode().split("\n", 1)
    except (InvalidToken, ValueError):
        return None, None
    return pin or None, card or None
