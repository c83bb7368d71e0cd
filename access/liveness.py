"""Liveness at a site, seen from the web process: whether the models are installed, the shipped threshold, and
the rule that ``enforce`` cannot be switched on without them. Reads files only: no torch here.

The models themselves run in the engine (``recognition.engine.liveness``); the policy's effect on a decision
is :mod:`access.decisions`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from recognition.engine import registry

from .decisions import LIVENESS_ENFORCE, LIVENESS_MONITOR

DEFAULT_THRESHOLD = registry.DEFAULT_LIVENESS_THRESHOLD
# New sites record live scores without refusing anybody on them: an admin looks at the site's own scores
# (the threshold page's histogram) before enforcing. README, "Liveness", says why.
DEFAULT_POLICY = LIVENESS_MONITOR


def installed() -> bool:
    return registry.liveness_installed()


def not_installed_message() -> str:
    return "liveness is not installed on this server: " + registry.LIVENESS_INSTALL_HINT


def status() -> str:
    """For people: "installed", or what to do."""
    return "installed" if installed() else not_installed_message()


def check_policy(policy: str) -> None:
    """Refuse ``enforce`` while the models are missing: every matched face would then be denied."""
    if policy == LIVENESS_ENFORCE and not installed():
        raise ValidationError({"liveness_policy": f"cannot enforce: {not_installed_message()}"})


def validate_liveness_threshold(value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValidationError("the liveness threshold is a probability in [0, 1]")
