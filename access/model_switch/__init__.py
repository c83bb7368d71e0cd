"""Switching the embedder without breaking every door.

A switch re-embeds every enrolled photo with the target model in the background (:func:`.reembed.run_chunk`: a
few photos per Celery task on the engine queue, so door snapshots queued meanwhile are served between chunks)
while the active model keeps deciding. Photos enrolled during the run are caught by the last pass (it ends only when no
enrolled photo lacks a target embedding and none is still being processed). Then:

- no failure: the switch happens at once (:func:`.state.switch`: one transaction makes the target active and remaps
  every site's threshold, :func:`access.thresholds.remap_threshold`);
- failures: the row waits in ``ready`` listing them and the people who would lose their last usable photo,
  until an admin switches anyway (:func:`.state.confirm`) or cancels (:func:`.state.cancel`).

Embeddings of the old model are kept (switching back only embeds what is missing) unless pruned
(:func:`.prune.prune_other_models`). The row is recognition's EmbedderState; the door path reads it through
``recognition.active`` (cached a couple of seconds per process).

One module per job: :mod:`.state` (starting, stopping, the switch itself), :mod:`.reembed` (the chunked
background work), :mod:`.progress` (the row's counts), :mod:`.impostors` (re-embedding reviewers' "not X"
faces), :mod:`.prune` and :mod:`.status` (what the console and the API show).
"""

from .prune import prune_other_models
from .reembed import LOCK_KEY, run_chunk
from .state import SwitchError, cancel, confirm, resume, start, switch_on_worker_start
from .status import people_losing_their_last_photo, status

__all__ = ["LOCK_KEY", "SwitchError", "cancel", "confirm", "people_losing_their_last_photo", "prune_other_models",
           "resume", "run_chunk", "start", "status", "switch_on_worker_start"]
