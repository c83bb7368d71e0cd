"""Training for the engine's networks: FaceNet embedders and the RetinaFace detector.

- :mod:`.facenet` -- ``train-facenet``: identity folders, PK batches, any loss of :mod:`..losses`;
- :mod:`.retinaface` -- ``train-retinaface``: WIDER FACE style labels, :mod:`.multibox` loss;
- :mod:`.data` (face folders, PK sampler, augmentation, alignment of raw photos),
  :mod:`.wider` (label reader, detection augmentation), :mod:`.evaluators` (end-of-epoch hooks);
- :mod:`.common` -- the run both share (device, AMP, schedules, checkpoints, resume, CSV log, plot,
  BatchNorm re-estimation, export of ``model.pt`` / ``model.json``); each trainer brings its data,
  model, loss and step.

Nothing here imports Django.
"""
