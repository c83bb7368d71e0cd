"""The second factor on a door, as pure data: the verification modes and what the credential check found.

The PIN itself and the card number never get here: the worker checks them (:mod:`access.rules.credentials`) and
hands the decision only the outcome, which is also all the event keeps ("PIN ok / wrong / missing / locked", a
card's last four digits and whose card it is)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

FACE, FACE_PIN, FACE_CARD, CARD_OR_FACE = "face", "face_pin", "face_card", "card_or_face"
MODES = (FACE, FACE_PIN, FACE_CARD, CARD_OR_FACE)
MODE_CHOICES = [(FACE, "face"), (FACE_PIN, "face + PIN"), (FACE_CARD, "face + card"),
                (CARD_OR_FACE, "card or face (either alone)")]

PIN_OK, PIN_WRONG, PIN_MISSING, PIN_LOCKED = "ok", "wrong", "missing", "locked"
PIN_UNSET = "unset"  # the person has no PIN: a PIN door cannot let them in


@dataclass(frozen=True)
class CredentialCheck:
    """What came with the snapshot, already checked: the PIN's outcome per person it was checked against (None:
    no PIN was sent) and the card's last 4 digits and holder (None: nobody holds it)."""

    pin: Mapping[int, str] | None = None
    card_last4: str = ""  # "": no card was sent
    card_person_id: int | None = None

    def pin_for(self, person_id: int) -> str:
        if self.pin is None:
            return PIN_MISSING
        return self.pin.get(person_id, PIN_WRONG)

    @property
    def has_card(self) -> bool:
        return bool(self.card_last4)

    def summary(self, mode: str, person_id: int | None) -> str:
        """For the log and the webhook, on a door of this ``mode``: "PIN ok" / "PIN wrong" / "PIN missing" /
        "PIN locked", "card …1234" / "card missing"; "" on a face-only door."""
        words = []
        if mode == FACE_PIN:
            if self.pin is None:
                words.append("PIN missing")
            elif person_id is not None:
                words.append(f"PIN {self.pin_for(person_id)}")
            else:
                words.append("PIN not checked")  # no face was anybody's: there was nobody to check it against
        if mode in (FACE_CARD, CARD_OR_FACE):
            words.append(f"card …{self.card_last4}" if self.card_last4 else "card missing" if mode == FACE_CARD
                         else "")
        return ", ".join(w for w in words if w)

    def stored(self) -> dict:
        """The JSON kept on the event (for the what-if replay): outcomes only, never the PIN or the card."""
        return {"pin": None if self.pin is None else {str(k): v for k, v in self.pin.items()},
                "card_last4": self.card_last4, "card_person": self.card_person_id}

    @classmethod
    def from_stored(cls, data: object) -> CredentialCheck:
        if not isinstance(data, dict):
            return NO_CREDENTIAL
        pin = data.get("pin")
        return cls({int(k): str(v) for k, v in pin.items()} if isinstance(pin, dict) else None,
                   str(data.get("card_last4") or ""), data.get("card_person"))


NO_CREDENTIAL = CredentialCheck()
