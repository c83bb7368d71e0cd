"""``train-retinaface``: train (or fine-tune) the RetinaFace MobileNet-0.25 detector.

    python -m recognition.engine train-retinaface --labels train/label.txt --images train/images \\
        --epochs 250 --out runs/retinaface

Outputs in ``--out``: ``checkpoint.pt`` (every epoch, for ``--resume``), ``model.pt`` (the plain
``state_dict`` of :class:`~recognition.engine.retinaface.RetinaFace`, loadable with
``RetinaFaceDetector.from_state_dict``), ``model.json``, ``log.csv`` and ``curves.png``.
Defaults follow the classic mnet recipe: 640 px crops, batch 32, SGD 1e-3 momentum 0.9,
weight decay 5e-4, step decay at 76 % and 88 % of the epochs, 7:1 hard negatives.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..detector import MEAN_BGR, RetinaFaceDetector, box_iou, prior_boxes
from ..retinaface import RetinaFace
from .common import Evaluate, Export, Run, add_loop_arguments, run_training_cli, trainer_parser
from .multibox import MultiBoxLoss
from .wider import Annotation, DetectionAugment, WiderFaceDataset, collate_detection, read_wider_labels


def to_net_input(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, H, W, 3) RGB uint8 -> [N, 3, H, W] BGR minus the mean, as the detector feeds the net."""
    x = torch.from_numpy(images).to(device, non_blocking=True).permute(0, 3, 1, 2).flip(1).float()
    return x - torch.tensor(MEAN_BGR, dtype=torch.float32, device=device).view(1, 3, 1, 1)


def detection_evaluator(
    annotations: list[Annotation],
    device: torch.device | str,
    iou: float = 0.5,
    score_threshold: float = 0.5,
    max_side: int = 640,
) -> Evaluate:
    """Recall / precision at ``iou`` of the detector on labelled images (greedy one-to-one matching)."""
    from .data import read_rgb

    images = [read_rgb(a.path) for a in annotations]

    def evaluate(model: nn.Module) -> dict[str, float]:
        det = RetinaFaceDetector(model, device=device, score_threshold=score_threshold, max_side=max_side)
        found = det.detect(images)
        tp = n_det = n_gt = 0
        for a, d in zip(annotations, found, strict=True):
            n_det += len(d)
            n_gt += len(a.boxes)
            if len(d) and len(a.boxes):
                ious = box_iou(torch.from_numpy(a.boxes), torch.from_numpy(d.boxes))
                used: set[int] = set()
                for g in range(len(a.boxes)):
                    order = ious[g].argsort(descending=True).tolist()
                    j = next((j for j in order if j not in used and ious[g, j] >= iou), None)
                    if j is not None:
                        used.add(j)
                        tp += 1
        return {"recall": tp / max(1, n_gt), "precision": tp / max(1, n_det)}

    return evaluate


def build_parser() -> argparse.ArgumentParser:
    p = trainer_parser("train-retinaface", __doc__)
    g = p.add_argument_group("data")
    g.add_argument("--labels", required=True, help="WIDER FACE style label file ('# path' lines, then faces)")
    g.add_argument("--images", required=True, help="directory the label paths are relative to")
    g.add_argument("--val-labels", default=None, help="labels evaluated (recall / precision @ IoU 0.5) each epoch")
    g.add_argument("--val-images", default=None, help="images directory of --val-labels (default: --images)")
    g.add_argument("--image-size", type=int, default=640, help="training crops are resized to this square")
    g.add_argument("--batch-size", type=int, default=32)
    g.add_argument("--no-augment", action="store_true", help="no crop / colour / flip (pad + resize only)")
    g = p.add_argument_group("loss")
    g.add_argument("--match-threshold", type=float, default=0.35, help="anchor IoU for a positive")
    g.add_argument("--neg-pos", type=float, default=7.0, help="hard negatives per positive")
    g.add_argument("--loc-weight", type=float, default=2.0, help="weight of the box term")
    add_loop_arguments(p, lr=1e-3, optimizer="sgd", weight_decay=5e-4)
    p.set_defaults(schedule="step", epochs=250)
    return p


def train_retinaface(args: argparse.Namespace, evaluate: Evaluate | None = None) -> dict:
    """Run the training described by ``args`` (see :func:`build_parser`); returns paths and history."""
    run = Run(args)
    device = run.device

    annotations = [a for a in read_wider_labels(Path(args.labels), Path(args.images)) if len(a.boxes)]
    if not annotations:
        raise ValueError(f"{args.labels}: no image with a usable face")
    augment = None if args.no_augment else DetectionAugment(args.image_size)
    dataset = WiderFaceDataset(annotations, args.image_size, augment)
    shuffle_gen = torch.Generator()  # reseeded per epoch so a resumed run replays the same order
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=len(dataset) > args.batch_size,
                        num_workers=args.workers, collate_fn=collate_detection, pin_memory=device.type == "cuda",
                        persistent_workers=args.workers > 0, generator=shuffle_gen)
    hooks = [evaluate]
    if args.val_labels:
        val = read_wider_labels(Path(args.val_labels), Path(args.val_images or args.images))
        hooks.append(detection_evaluator(val, device))

    model = RetinaFace()
    run.load_initial_weights(model)
    model.to(device)
    criterion = MultiBoxLoss(args.match_threshold, args.neg_pos, args.loc_weight)
    priors = prior_boxes(args.image_size, args.image_size).to(device)

    def step(x: torch.Tensor, targets: list) -> tuple[torch.Tensor, dict[str, float]]:
        with run.autocast():
            loc, conf, landm = model(x)
        loss = criterion(loc.float(), conf.float(), landm.float(), targets, priors)
        return loss, dict(criterion.components)

    export = Export(
        weights=lambda: {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        identity={"arch": "retinaface_mnet025"},
        details={"image_size": args.image_size, "images": len(dataset)},
    )
    return run.fit(
        {"model": model},
        loader,
        lambda n: shuffle_gen.manual_seed(args.seed * 1_000_003 + n),
        lambda images: to_net_input(images, device),
        step,
        export,
        title="RetinaFace mnet0.25",
        summary=f"{len(dataset)} images, {sum(len(a.boxes) for a in annotations)} faces, {len(loader)} batches of "
        f"{args.batch_size} at {args.image_size}px",
        evaluators=hooks,
    )


def main_train_retinaface(argv: list[str] | None = None, evaluate: Evaluate | None = None) -> int:
    """CLI entry point; ``evaluate(model) -> dict`` is an extra end-of-epoch hook (Python callers)."""
    return run_training_cli(build_parser, train_retinaface, argv, evaluate)
