"""When the threshold page may suggest a threshold, and how sure the suggestion is.

The site's identification false-accept rate is measured with each enrolled person playing a stranger once:
with n people, one stranger let in moves it by 1/n, and with no stranger let in the 95% upper bound is still
about 3/n (the "rule of three"). So a suggestion "for at most 1% false accepts" needs about 300 people: on a
5-person site the page used to suggest 1.235 while 80% of strangers got in at 1.25. Below that the page says
how many people are needed instead of a number. A suggestion above the model card's identification threshold
(measured on 1,680 LFW people) comes with a warning: it lets in more strangers than the card measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .tuning import SiteDistances

Z95 = 1.959964


def people_needed(far_target: float) -> int:
    """People (each playing a stranger once) for a measured rate of 0 to bound the true one by ``far_target``."""
    return math.ceil(3.0 / far_target)


def wilson_interval(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of a rate of ``hits`` in ``n`` (sensible at 0 and with few trials)."""
    if n <= 0:
        return 0.0, 1.0
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Suggestion:
    far_target: float
    people: int
    needed: int
    value: float | None = None  # None: not enough people to suggest anything meaningful
    far: float | None = None  # the measured rate at ``value``
    far_low: float | None = None
    far_high: float | None = None  # its 95% upper bound: what one can claim
    card_threshold: float | None = None
    above_card: bool = False  # ``value`` is above the model card's identification threshold

    @property
    def enough(self) -> bool:
        return self.value is not None


def suggest(d: SiteDistances, far_target: float, card_threshold: float | None) -> Suggestion:
    out = Suggestion(far_target=far_target, people=d.people, needed=people_needed(far_target),
                     card_threshold=card_threshold)
    if d.people < out.needed or d.nearest_other.size == 0:
        return out
    value = d.suggest(far_target)
    if value is None:
        return out
    hits = int((d.nearest_other <= value).sum())
    out.value, out.far = value, hits / d.nearest_other.size
    out.far_low, out.far_high = wilson_interval(hits, int(d.nearest_other.size))
    out.above_card = card_threshold is not None and value > card_threshold
    return out
