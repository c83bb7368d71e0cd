"""How long things live: retention of snapshots (:mod:`.retention`), erasure of a person (:mod:`.erasure`),
and the sweeper that re-queues accepted jobs that were never finished (:mod:`.sweeper`)."""
