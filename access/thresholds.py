"""A site's match threshold: the one home of its rules.

- Its range and its default (the active embedder's identification threshold from the model card).
- It belongs to a model: a number set now is the active model's and clears the note a switch left
  (:func:`set_threshold`); a switch of the embedder remaps it (:func:`remap_threshold`) and keeps a custom one
  of the old model in ``other_thresholds``.
- Reading it: :func:`threshold_for` (for distances of a given model) and :func:`current_threshold` (the active
  model's); every reader goes through them, never through ``match_threshold`` alone.

Nothing here imports the models module (it imports this one): a site is anything with the Site fields.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError

log = logging.getLogger(__name__)

MAX_THRESHOLD = 2.0  # the largest Euclidean distance between two unit vectors
SAVED_FIELDS = ["match_threshold", "threshold_model", "threshold_note", "updated_at"]


def validate_threshold(value: float) -> None:
    if not 0.0 < value <= MAX_THRESHOLD:
        raise ValidationError(f"threshold must be in (0, {MAX_THRESHOLD}] (Euclidean distance of unit vectors)")


def model_default_threshold(name: str) -> float | None:
    """A model's identification threshold from its model card (None: it has none, e.g. a local model)."""
    from recognition.engine.registry import WeightsError, get_spec

    try:
        threshold = get_spec(name).default_threshold
    except WeightsError:
        return None
    return None if threshold is None else float(threshold)


def default_match_threshold() -> float:
    """The active embedder's identification threshold from the model card, read when a site is created.

    Raises ValidationError when that model has none (a locally trained one): the site needs an explicit one.
    """
    from recognition.engine.registry import WeightsError, get_spec
    from recognition.pipelines import current_embedder_name

    name = current_embedder_name()
    try:
        threshold = get_spec(name).default_threshold
    except WeightsError as exc:
        raise ValidationError({"match_threshold": str(exc)}) from None
    if threshold is None:
        raise ValidationError(
            {"match_threshold": f"embedder {name!r} has no measured identification threshold: give one"}
        )
    return float(threshold)


def threshold_for(site: Any, model: str) -> float:
    """The threshold ``site`` applies to distances between embeddings of ``model``.

    A site's ``match_threshold`` belongs to ``threshold_model``; thresholds of other models it had before a
    switch are kept in ``other_thresholds``. A number recorded for another model is never applied: with none
    for ``model``, its model card's default is (and logged). Raises ValueError when that model has none."""
    if not site.threshold_model or site.threshold_model == model:
        return site.match_threshold
    remembered = (site.other_thresholds or {}).get(model)
    if remembered is not None:
        return float(remembered)
    default = model_default_threshold(model)
    if default is None:
        raise ValueError(f"site {site.pk} has no threshold for {model!r} and its model card gives none")
    log.warning("site %s: threshold %.3f belongs to %s, not %s; using %s's default %.3f", site.pk,
                site.match_threshold, site.threshold_model, model, model, default)
    return default


def current_threshold(site: Any) -> float:
    """The threshold ``site`` applies now (to the active model's distances)."""
    from recognition.pipelines import current_embedder_name

    return threshold_for(site, current_embedder_name())


def strictest_threshold(sites: Iterable[Any]) -> float:
    """The smallest threshold in force among ``sites``; with none, the active model's default."""
    found = [current_threshold(s) for s in sites]
    return min(found) if found else default_match_threshold()


def set_threshold(site: Any, value: float, save: bool = True) -> None:
    """Give ``site`` a new threshold: a number set now belongs to the active model and re-tunes it (the note a
    model switch left is cleared). ``save=False``: the caller saves (a form or a serializer)."""
    from recognition.pipelines import current_embedder_name

    validate_threshold(value)
    site.match_threshold = value
    site.threshold_model, site.threshold_note = current_embedder_name(), ""
    if save:
        site.save(update_fields=SAVED_FIELDS)


def remap_threshold(site: Any, old: str, new: str, when: dt.datetime) -> str:
    """Give ``site`` its threshold for ``new`` (a switch of the embedder from ``old``): a threshold that was
    ``old``'s model-card default becomes ``new``'s default; a custom one is remembered for ``old`` (restored if
    it comes back) and the site gets the threshold remembered for ``new`` if any, else ``new``'s default, with a
    note to re-tune. The change is in the audit log (django-auditlog records the Site update)."""
    old = site.threshold_model or old
    if old == new:
        return ""
    old_default = model_default_threshold(old)
    custom = old_default is None or abs(site.match_threshold - old_default) > 1e-9
    remembered = dict(site.other_thresholds or {})
    if custom:
        remembered[old] = site.match_threshold
    else:
        remembered.pop(old, None)
    restored = remembered.pop(new, None)
    day = when.date().isoformat()
    if restored is not None:
        site.match_threshold = float(restored)
        note = f"{new}'s threshold {restored:.3f} set before was restored at the switch on {day}"
    else:
        site.match_threshold = model_default_threshold(new)
        note = (f"threshold reset to {new}'s default at the switch on {day}: re-tune (the custom "
                f"{remembered[old]:.3f} is kept for {old})") if custom else ""
    site.threshold_model, site.other_thresholds, site.threshold_note = new, remembered, note
    site.save(update_fields=[*SAVED_FIELDS[:2], "other_thresholds", *SAVED_FIELDS[2:]])
    return note
