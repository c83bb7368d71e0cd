"""``train-facenet``: train (or fine-tune) a FaceNet embedder on an identity-folder dataset.

    python -m recognition.engine train-facenet --data DIR --backbone mobilenet --loss triplet+ce \\
        --epochs 30 --out runs/facenet

Outputs in ``--out``: ``checkpoint.pt`` (every epoch; ``--resume`` continues from it),
``model.pt`` (the plain ``state_dict`` of the embedding net, classifier removed, loadable
with ``strict=True`` into ``embedders.build_net(arch)``), ``model.json`` (arch, digest,
figures), ``log.csv`` and ``curves.png``.

Losses (``--loss``): ``triplet+ce`` is the seed's objective (batch-all triplet on the
L2-normalised embedding + cross-entropy of the auxiliary classifier on the pre-normalisation
vector); ``triplet-hard+ce`` mines batch-hard instead; ``triplet`` / ``triplet-hard`` /
``circle`` are metric losses alone; ``softmax`` / ``lsoftmax`` / ``sphereface`` / ``normface`` /
``cosface`` / ``arcface`` are classifier heads owned by the loss (not saved in ``model.pt``).
``distill`` trains the net to reproduce a pretrained ``--teacher``'s embeddings (:mod:`.distill`).
Hyper-parameters: ``--loss-arg name=value`` (e.g. ``m=0.35``, ``s=30``, ``alpha=0.2``).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from . import losses as L
from .common import Evaluate, Export, Run, add_loop_arguments, run_training_cli, trainer_parser
from .data import FaceAugment, FaceFolder, PKSampler, align_folder, collate_faces, detector_aligner, people_in_pairs
from .distill import add_distill_arguments

BACKBONES = {"mobilenet": "facenet_mobilenet", "inception_resnet": "facenet_inception_resnet"}
FACENET_LOSSES = {"triplet+ce": "all", "triplet-hard+ce": "hard"}
METRIC_LOSSES = {"triplet": "batch-all", "triplet-hard": "batch-hard", "circle": "circle"}
LOSS_NAMES = [*FACENET_LOSSES, *METRIC_LOSSES, *L.CLASSIFIER_LOSSES, "distill"]


def parse_loss_args(items: list[str] | None) -> dict[str, float | int | bool]:
    """``["m=0.35", "easy_margin=true", "m=4"]`` -> typed keyword arguments."""
    out: dict[str, float | int | bool] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--loss-arg {item!r}: expected name=value")
        low = value.lower()
        if low in ("true", "false"):
            out[key] = low == "true"
        else:
            num = float(value)
            out[key] = int(num) if num.is_integer() and "." not in value else num
    return out


def build_criterion(
    name: str, num_classes: int, embedding_size: int = 128, loss_args: dict | None = None
) -> tuple[nn.Module, str]:
    """The loss module and its kind: ``facenet`` (needs the net's classifier), ``classifier``
    (owns its weight matrix) or ``metric``."""
    kw = dict(loss_args or {})
    if name in FACENET_LOSSES:
        return L.FaceNetLoss(miner=FACENET_LOSSES[name], **kw), "facenet"
    if name in METRIC_LOSSES:
        return L.METRIC_LOSSES[METRIC_LOSSES[name]](**kw), "metric"
    if name in L.CLASSIFIER_LOSSES:
        return L.CLASSIFIER_LOSSES[name](embedding_size, num_classes, **kw), "classifier"
    raise ValueError(f"unknown loss {name!r}; choose from {', '.join(LOSS_NAMES)}")


def preprocess_fn(arch: str) -> Callable[[np.ndarray], torch.Tensor]:
    """The embedder's own ``preprocess`` for ``arch`` (it needs no network, so no instance is built)."""
    from ..embedders import EMBEDDER_CLASSES

    cls = EMBEDDER_CLASSES[arch]
    return cls.__new__(cls).preprocess


def embedding_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The net's weights without the training-only classifier, on the CPU."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if not k.startswith("classifier.")}


def build_parser() -> argparse.ArgumentParser:
    p = trainer_parser("train-facenet", __doc__)
    g = p.add_argument_group("data")
    g.add_argument("--data", required=True, help="ROOT of ROOT/<identity>/<image> (aligned crops unless --align)")
    g.add_argument("--align", action="store_true",
                   help="--data holds raw photos: detect + align them once into OUT/aligned (needs detector weights)")
    g.add_argument("--exclude-pairs", action="append", default=[],
                   help="leave out every person named in this LFW pairs file (repeatable)")
    g.add_argument("--min-images", type=int, default=2, help="identities with fewer images are left out")
    g.add_argument("--val-identities", type=int, default=0,
                   help="hold out this many identities for a pair-verification check each epoch")
    g.add_argument("--input-size", type=int, default=0, help="crop side (0 = the embedder's own, 160)")
    g.add_argument("--no-augment", action="store_true")
    g.add_argument("--p", type=int, default=32, help="identities per batch")
    g.add_argument("--k", type=int, default=4, help="images per identity per batch")
    g.add_argument("--batches-per-epoch", type=int, default=0, help="0 = images // (P*K)")
    g = p.add_argument_group("model and loss")
    g.add_argument("--backbone", choices=sorted(BACKBONES), default="mobilenet")
    g.add_argument("--loss", choices=LOSS_NAMES, default="triplet+ce")
    g.add_argument("--loss-arg", action="append", default=[], metavar="NAME=VALUE",
                   help="loss hyper-parameter, e.g. m=0.35 s=30 alpha=0.2 ce_weight=1 easy_margin=true")
    g.add_argument("--dropout", type=float, default=None, help="override the net's dropout before the bottleneck")
    add_distill_arguments(g)
    g = p.add_argument_group("evaluation")
    g.add_argument("--eval-pairs", default=None, help="LFW pairs file evaluated each epoch (e.g. pairsDevTest.txt)")
    g.add_argument("--lfw-root", default=None, help="LFW root holding images/ (for --eval-pairs)")
    add_loop_arguments(p, lr=1e-3, optimizer="adamw", weight_decay=5e-4)
    # short runs and fine-tunes are common here; without it eval-mode embeddings of a young net collapse
    p.set_defaults(bn_recalibrate=8)
    return p


def _held_out(identities: list[str], n: int) -> frozenset[str]:
    """``n`` identities chosen by name hash (stable across runs and machines)."""
    ranked = sorted(identities, key=lambda s: hashlib.sha256(s.encode()).hexdigest())
    return frozenset(ranked[:n])


def train_facenet(args: argparse.Namespace, evaluate: Evaluate | None = None) -> dict:
    """Run the training described by ``args`` (see :func:`build_parser`); returns paths and history."""
    from ..embedders import EMBEDDER_CLASSES, build_net

    if not Path(args.data).is_dir():
        raise FileNotFoundError(f"--data {args.data}: no such directory")
    run = Run(args)
    device, out = run.device, run.out
    arch = BACKBONES[args.backbone]
    size = args.input_size or EMBEDDER_CLASSES[arch].input_size

    exclude: set[str] = set()
    for f in args.exclude_pairs:
        exclude |= people_in_pairs(Path(f))
    data_root = Path(args.data)
    if args.align:
        aligner = detector_aligner(arch, device)
        counts = align_folder(data_root, out / "aligned", aligner, frozenset(exclude), run.progress)
        print(f"# aligned into {out / 'aligned'}: {counts}", file=sys.stderr)
        data_root = out / "aligned"

    all_ids = sorted(d.name for d in data_root.iterdir() if d.is_dir() and d.name not in exclude)
    held = _held_out(all_ids, args.val_identities)
    augment = None if args.no_augment else FaceAugment()
    train_set = FaceFolder(data_root, size, args.min_images, frozenset(exclude | held), augment)
    preprocess = preprocess_fn(arch)

    hooks = [evaluate]
    if held:
        from .evaluators import folder_pairs_evaluator

        val = FaceFolder(data_root, size, 1, frozenset((set(all_ids) - held) | exclude))
        crops = np.stack([val.load(i) for i in range(len(val))])
        hooks.append(folder_pairs_evaluator(crops, val.labels, preprocess, device))
    if args.eval_pairs:
        from .evaluators import lfw_pairs_evaluator

        if not args.lfw_root:
            raise ValueError("--eval-pairs needs --lfw-root")
        hooks.append(lfw_pairs_evaluator(Path(args.eval_pairs), Path(args.lfw_root), arch, device))

    dataset, targets, teacher = train_set, None, None
    if args.loss == "distill":
        from . import distill

        dataset, targets, criterion, teacher = distill.prepare(args, train_set, arch, size, device, out)
        kind = "distill"
    else:
        loss_args = parse_loss_args(args.loss_arg)
        criterion, kind = build_criterion(args.loss, train_set.num_classes, 128, loss_args)
    model = build_net(arch, num_classes=train_set.num_classes if kind == "facenet" else None)
    if args.dropout is not None:
        model.dropout.p = args.dropout
    run.load_initial_weights(model, optional=("classifier.",))
    model.to(device)
    criterion.to(device)

    sampler = PKSampler(train_set.labels, args.p, args.k, args.batches_per_epoch or None, seed=args.seed)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=args.workers, collate_fn=collate_faces,
                        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0)

    def net_input(crops: np.ndarray) -> torch.Tensor:
        return preprocess(crops).to(device, non_blocking=True)

    def step(x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        labels = labels.to(device, non_blocking=True)
        with run.autocast():
            feats = model.forward_features(x)
        feats = feats.float()  # losses in float32: margins and exp(s * cos) are fp16-hostile
        metrics: dict[str, float] = {}
        if kind == "distill":  # the "labels" are dataset indices (distill.WithIndex)
            loss = criterion(feats, targets[labels])
            logits = None
            metrics = dict(criterion.components)
        elif kind == "facenet":
            logits = model.classifier(feats)
            loss = criterion(feats, logits, labels)
            metrics = {f"{k}_loss": v for k, v in criterion.components.items()}
            metrics["triplet_active"] = criterion.triplet.last_active_fraction
        elif kind == "classifier":
            loss = criterion(feats, labels)
            logits = criterion.logits(feats)
        else:
            loss = criterion(F.normalize(feats, dim=1), labels)
            logits = None
            if hasattr(criterion, "last_active_fraction"):
                metrics["triplet_active"] = criterion.last_active_fraction
        if logits is not None:
            metrics["accuracy"] = float((logits.argmax(1) == labels).float().mean())
        return loss, metrics

    export = Export(
        weights=lambda: embedding_state_dict(model),
        identity={"arch": arch, "input_size": size, "embedder_class": EMBEDDER_CLASSES[arch].__name__},
        details={"loss": args.loss, "loss_args": parse_loss_args(args.loss_arg), "identities": train_set.num_classes,
                 "images": len(train_set), "excluded_people": len(exclude),
                 **({"teacher": teacher} if teacher else {})},
    )
    return run.fit(
        {"model": model, "criterion": criterion},
        loader,
        sampler.set_epoch,
        net_input,
        step,
        export,
        title=f"FaceNet {args.backbone}, {args.loss}",
        summary=f"{len(train_set)} images of {train_set.num_classes} identities ({len(held)} held out), "
        f"{len(sampler)} batches of {sampler.p}x{sampler.k}, {arch} {size}px, loss {args.loss}",
        evaluators=hooks,
    )


def main_train_facenet(argv: list[str] | None = None, evaluate: Evaluate | None = None) -> int:
    """CLI entry point; ``evaluate(model) -> dict`` is an extra end-of-epoch hook (Python callers)."""
    return run_training_cli(build_parser, train_facenet, argv, evaluate)
