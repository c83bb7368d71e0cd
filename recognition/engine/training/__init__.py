"""Training for the engine's networks: FaceNet embedders and the RetinaFace detector.

- :mod:`.facenet` -- ``train-facenet``: identity folders, PK batches, any loss of :mod:`..losses`;
- :mod:`.retinaface` -- ``train-retinaface``: WIDER FACE style labels, :mod:`.multibox` loss;
- :mod:`.data` (face folders, PK sampler, augmentation, alignment of raw photos),
  :mod:`.wider` (label reader, detection augmentation), :mod:`.evaluators` (end-of-epoch hooks);
- :mod:`.common` -- the loop both share (AMP, schedules, checkpoints, resume, CSV log, plot).

Nothing here imports Django.
"""
