"""The keys the camera bridge posts with: one per camera, derived from the bridge's token, so that the bridge goes
through the camera intake as that camera (its throttle, its checks, its log entries) while the camera's own key
stays where it is (hashed, shown once). Nothing derived is stored: the server derives the key again to check it,
and changing the token changes every bridge key at once.

A bridge key looks like a camera key, ``fa_<8 characters>_<secret>``, with a prefix that no camera key can have
(``x`` + the camera's id in hex: camera keys' prefixes are hex digits).
"""

from __future__ import annotations

import hashlib
import hmac

MARK = "x"
MAX_CAMERA_ID = 16**7 - 1


def bridge_key(token: str, camera_id: int) -> str:
    if not token or not 0 < camera_id <= MAX_CAMERA_ID:
        raise ValueError("a bridge key needs the bridge token and a camera id under 16**7")
    prefix = f"{MARK}{camera_id:07x}"
    return f"fa_{prefix}_{_secret(token, prefix)}"


def camera_id_of(key: str, token: str) -> int | None:
    """The camera a bridge key was derived for with ``token``, or None (not a bridge key, or a wrong one)."""
    parts = key.split("_", 2)
    if not token or len(parts) != 3 or parts[0] != "fa" or len(parts[1]) != 8 or not parts[1].startswith(MARK):
        return None
    try:
        camera_id = int(parts[1][1:], 16)
    except ValueError:
        return None
    if not hmac.compare_digest(parts[2], _secret(token, parts[1])):
        return None
    return camera_id


def is_bridge_prefix(prefix: str) -> bool:
    return prefix.startswith(MARK)


def _secret(token: str, prefix: str) -> str:
    return hmac.new(token.encode(), f"camera-bridge:{prefix}".encode(), hashlib.sha256).hexdigest()
