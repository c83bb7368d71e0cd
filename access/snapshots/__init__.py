"""A door snapshot's way through: the web intake (:mod:`.intake`: store, queue, wait), the worker
(:mod:`.processing`: detect, match, decide, store) and what the two say to each other (:mod:`.channel`)."""
