"""People looking back at the log: reviews of events (:mod:`.reviews`), the faces marked "not <person>"
(:mod:`.impostors`), strangers seen repeatedly (:mod:`.strangers`), and threshold tuning with a what-if replay
(:mod:`.tuning`)."""
