"""What the door and the systems around it hear of a decision: the door's step after the decision
(:mod:`.door`) and its outputs (:mod:`.webhooks`, :mod:`.mqtt`)."""
