"""The training run both trainers share, and its bookkeeping.

:class:`Run` is a whole run: seed, threads, device, optimiser and schedule from the arguments of
:func:`add_loop_arguments`, ``--resume``, the epochs, the BatchNorm re-estimation, the export of
``model.pt`` and ``model.json``. A trainer brings only what differs: its data, model, loss, step
and what its export holds (:class:`Export`).

:class:`Loop` is its epoch loop. One epoch = iterate a loader, ``step_fn(batch) -> (loss,
metrics)``, backward through a GradScaler (a no-op off CUDA), optimizer + per-iteration LR schedule
step. After each epoch: the optional ``evaluate(model) -> dict`` hook, a row in ``history``,
``log.csv`` and ``curves.png`` rewritten from the history, and ``checkpoint.pt`` (everything needed
to resume).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

StepFn = Callable[[Any], tuple[torch.Tensor, dict[str, float]]]
Evaluate = Callable[[nn.Module], Mapping[str, float]]


# ------------------------------------------------------------------------------- arguments


def trainer_parser(command: str, doc: str) -> argparse.ArgumentParser:
    """The parser of ``python -m recognition.engine COMMAND``, described by the first paragraph of ``doc``."""
    return argparse.ArgumentParser(prog=f"python -m recognition.engine {command}", description=doc.split("\n\n")[0],
                                   formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def add_loop_arguments(p: argparse.ArgumentParser, *, lr: float, optimizer: str, weight_decay: float) -> None:
    """Options every trainer has: optimisation, schedule, device, checkpoints, logging."""
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=10)
    g.add_argument("--optimizer", choices=["adamw", "sgd"], default=optimizer)
    g.add_argument("--lr", type=float, default=lr, help="peak learning rate")
    g.add_argument("--weight-decay", type=float, default=weight_decay)
    g.add_argument("--momentum", type=float, default=0.9, help="SGD only")
    g.add_argument("--schedule", choices=["cosine", "step", "constant"], default="cosine")
    g.add_argument("--warmup-epochs", type=float, default=0.0, help="linear warm-up from lr/100")
    g.add_argument("--step-epochs", type=int, nargs="+", default=None, help="step schedule: epochs where lr *= gamma")
    g.add_argument("--gamma", type=float, default=0.1, help="step schedule factor")
    g.add_argument("--clip-grad", type=float, default=0.0, help="max gradient norm (0 = off)")
    g.add_argument("--bn-recalibrate", type=int, default=0, metavar="N",
                   help="after each epoch, re-estimate BatchNorm statistics over N training batches "
                   "(worth it for short runs, whose running means lag behind the weights)")
    g = p.add_argument_group("run")
    g.add_argument("--out", required=True, help="output directory (checkpoint.pt, model.pt, log.csv, curves.png)")
    g.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available)")
    g.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    g.add_argument("--workers", type=int, default=4, help="DataLoader worker processes")
    g.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="resume from this checkpoint; a bare --resume means OUT/checkpoint.pt when it exists")
    g.add_argument("--init-from", default=None,
                   help="initial weights: a state_dict / checkpoint file, or a registry model name")
    g.add_argument("--plot-every", type=int, default=1, help="redraw curves.png every N epochs (and at the end)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


def pick_device(name: str | None) -> torch.device:
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device, enabled: bool) -> torch.autocast:
    """Mixed precision (float16) on ``device`` when ``enabled``; a no-op context otherwise."""
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=enabled)


# ------------------------------------------------------------------------------ optimisation


def build_optimizer(params: Iterable[nn.Parameter], args: argparse.Namespace) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if args.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay, nesterov=args.momentum > 0
        )
    return torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)


def lr_factor(
    it: int,
    total: int,
    steps_per_epoch: int,
    kind: str,
    warmup_epochs: float = 0.0,
    step_epochs: list[int] | None = None,
    gamma: float = 0.1,
) -> float:
    """Multiplier of the peak LR at iteration ``it`` (0-based) of ``total``.

    Linear warm-up from 1 % over ``warmup_epochs``, then ``cosine`` decay to 0 at ``total``,
    ``step`` (x gamma at each epoch of ``step_epochs``) or ``constant``.
    """
    warm = int(round(warmup_epochs * steps_per_epoch))
    if it < warm:
        return 0.01 + 0.99 * it / warm
    if kind == "cosine":
        span = max(1, total - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (it - warm) / span)))
    if kind == "step":
        epoch = it // max(1, steps_per_epoch)
        return gamma ** sum(epoch >= e for e in (step_epochs or []))
    return 1.0


def build_scheduler(
    optimizer: torch.optim.Optimizer, args: argparse.Namespace, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    total = args.epochs * steps_per_epoch
    step_epochs = args.step_epochs
    if args.schedule == "step" and not step_epochs:
        step_epochs = [int(args.epochs * 0.76), int(args.epochs * 0.88)]  # RetinaFace's 190/220 of 250

    def f(it: int) -> float:
        return lr_factor(it, total, steps_per_epoch, args.schedule, args.warmup_epochs, step_epochs, args.gamma)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, f)


# ------------------------------------------------------------------------------ checkpoints


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save through a temporary file, so an interrupted save never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain state_dict from a file holding one, or the model's entry of a training checkpoint."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and isinstance(obj.get("modules"), dict):  # this package's checkpoint.pt
        obj = obj["modules"].get("model")
    elif isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: not a state_dict (or a checkpoint with a 'model' state_dict)")
    return obj


def resolve_init(spec: str) -> dict[str, torch.Tensor]:
    """``--init-from``: a file, else a registry model name (its verified cached weights)."""
    if Path(spec).is_file():
        return load_state_dict_file(spec)
    from .. import registry

    try:
        model_spec = registry.get_spec(spec)
    except Exception as exc:
        raise ValueError(f"--init-from {spec!r}: no such file, nor a registry model name") from exc
    return registry.load_state_dict(model_spec)


def load_initial_weights(model: nn.Module, sd: Mapping[str, torch.Tensor], optional: tuple[str, ...] = ()) -> None:
    """Load ``sd`` into ``model``; only keys under the ``optional`` prefixes may be absent or extra
    (e.g. the training classifier, whose classes differ between datasets)."""
    own = model.state_dict()
    sd = {k: v for k, v in sd.items() if not k.startswith(optional) or (k in own and own[k].shape == v.shape)}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.startswith(optional)]
    if missing or unexpected:
        raise ValueError(f"initial weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")


def state_dict_digest(sd: Mapping[str, torch.Tensor]) -> str:
    """The registry's digest of a state_dict (``model.json``'s ``state_dict_sha256``)."""
    try:
        from ..registry import state_dict_sha256
    except ImportError:  # the registry is optional for training
        h = hashlib.sha256()
        for key in sorted(sd):
            t = sd[key].detach().cpu().contiguous()
            h.update(key.encode() + str(t.dtype).encode() + str(tuple(t.shape)).encode() + t.numpy().tobytes())
        return h.hexdigest()
    return state_dict_sha256(dict(sd))


def resume_path(args: argparse.Namespace) -> Path | None:
    if not args.resume:
        return None
    path = Path(args.out) / "checkpoint.pt" if args.resume == "auto" else Path(args.resume)
    if not path.is_file():
        if args.resume == "auto":
            return None  # nothing to resume yet: start fresh
        raise FileNotFoundError(f"--resume {path}: no such checkpoint")
    return path


# ------------------------------------------------------------------------------ log and plot


def write_csv(history: list[dict[str, float]], path: Path) -> None:
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for row in history:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    os.replace(tmp, path)


def plot_history(history: list[dict[str, float]], path: Path, title: str = "") -> None:
    """Loss curves (left) and accuracy-like curves (right) against the epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not history:
        return
    epochs = [r["epoch"] for r in history]
    keys = [k for k in history[-1] if k not in ("epoch", "lr", "seconds") and isinstance(history[-1][k], float)]
    loss_keys = [k for k in keys if "loss" in k]
    other = [k for k in keys if k not in loss_keys and not k.endswith("threshold")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, group, label in ((axes[0], loss_keys, "loss"), (axes[1], other, "accuracy / metric")):
        for k in group:
            ax.plot(epochs, [r.get(k, float("nan")) for r in history], marker="o", ms=3, label=k)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if group:
            ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------------ batch norm


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Re-estimate every BatchNorm's running statistics as the plain average over ``batches``.

    After a short or high-LR run the running means lag far behind the weights, and eval-mode
    outputs can collapse to one vector; this pass (weights untouched, dropout off) fixes that.
    Returns the number of batches seen.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    was_training = model.training
    momenta = [m.momentum for m in bns]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
        m.train()
    n = 0
    for x in batches:
        model(x)
        n += 1
    for m, mom in zip(bns, momenta, strict=True):
        m.momentum = mom
    model.train(was_training)
    return n


# ------------------------------------------------------------------------------ the loop


class Loop:
    """The epoch loop with AMP, per-iteration scheduling, checkpoints and logs.

    ``modules`` are everything with state to checkpoint (the model, and e.g. a margin
    loss's weight matrix); ``state_extra()`` adds caller data (args) to the checkpoint;
    ``before_eval()`` runs after each epoch's training, before evaluation and checkpoint (e.g. a
    BatchNorm re-estimation); ``on_epoch_end(loop)`` runs after the checkpoint (e.g. to export).
    """

    def __init__(
        self,
        modules: dict[str, nn.Module],
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        device: torch.device,
        out_dir: Path,
        amp: bool = True,
        clip_grad: float = 0.0,
        progress: bool = True,
        title: str = "",
        plot_every: int = 1,
    ) -> None:
        self.modules = modules
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.device = device
        self.out_dir = Path(out_dir)
        self.amp = bool(amp) and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.clip_grad = clip_grad
        self.progress = progress
        self.title = title
        self.plot_every = max(1, plot_every)
        self.epoch = 0  # epochs completed
        self.history: list[dict[str, float]] = []

    # -- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "history": self.history,
            "torch_rng": torch.get_rng_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for k, m in self.modules.items():
            m.load_state_dict(state["modules"][k])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        torch.set_rng_state(state["torch_rng"])

    def params(self) -> list[nn.Parameter]:
        return [p for m in self.modules.values() for p in m.parameters() if p.requires_grad]

    def autocast(self) -> torch.autocast:
        return autocast(self.device, self.amp)

    # -- training
    def train_epoch(self, loader: Iterable, step_fn: StepFn, steps: int | None = None) -> dict[str, float]:
        from tqdm import tqdm

        for m in self.modules.values():
            m.train()
        sums: dict[str, float] = {}
        n = 0
        bar = tqdm(
            loader,
            total=steps,
            desc=f"epoch {self.epoch + 1}",
            unit="it",
            disable=not self.progress,
            leave=False,
            dynamic_ncols=True,
        )
        for batch in bar:
            self.optimizer.zero_grad(set_to_none=True)
            loss, metrics = step_fn(batch)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss is {float(loss)} at epoch {self.epoch + 1}, step {n + 1}")
            self.scaler.scale(loss).backward()
            if self.clip_grad > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.params(), self.clip_grad)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            n += 1
            metrics = {"loss": float(loss.detach()), **metrics}
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            bar.set_postfix({k: f"{s / n:.4f}" for k, s in list(sums.items())[:3]})
        bar.close()
        return {k: s / max(1, n) for k, s in sums.items()}

    def run(
        self,
        epochs: int,
        make_loader: Callable[[int], Iterable],
        step_fn: StepFn,
        evaluate: Evaluate | None = None,
        state_extra: Callable[[], dict[str, Any]] | None = None,
        on_epoch_end: Callable[[Loop], None] | None = None,
        steps_per_epoch: int | None = None,
        before_eval: Callable[[], None] | None = None,
    ) -> list[dict[str, float]]:
        """Train from ``self.epoch`` up to ``epochs``; ``make_loader(epoch)`` gives each epoch's batches."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        while self.epoch < epochs:
            t0 = time.perf_counter()
            row: dict[str, float] = {"epoch": self.epoch + 1, "lr": self.optimizer.param_groups[0]["lr"]}
            row.update(
                {
                    f"train_{k}" if not k.startswith("train") else k: v
                    for k, v in self.train_epoch(make_loader(self.epoch), step_fn, steps_per_epoch).items()
                }
            )
            if before_eval is not None:
                before_eval()
            if evaluate is not None:
                modes = {k: m.training for k, m in self.modules.items()}
                for m in self.modules.values():
                    m.eval()
                with torch.no_grad():
                    row.update({f"eval_{k}": float(v) for k, v in evaluate(self.modules["model"]).items()})
                for k, m in self.modules.items():
                    m.train(modes[k])
            row["seconds"] = round(time.perf_counter() - t0, 2)
            self.epoch += 1
            self.history.append(row)
            write_csv(self.history, self.out_dir / "log.csv")
            if self.epoch % self.plot_every == 0 or self.epoch == epochs:
                plot_history(self.history, self.out_dir / "curves.png", self.title)
            atomic_save({**self.state_dict(), **(state_extra() if state_extra else {})}, self.out_dir / "checkpoint.pt")
            if on_epoch_end is not None:
                on_epoch_end(self)
            if self.progress:
                shown = {k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()}
                print(" ".join(f"{k}={v}" for k, v in shown.items()), flush=True)
        return self.history


# ------------------------------------------------------------------------------ the run


RECALIBRATION_DRAW = 10_000_000  # reseed(RECALIBRATION_DRAW + epoch): the BatchNorm pass's draw, apart from all epochs'


@dataclass
class Export:
    """What a run leaves besides its checkpoint: ``weights()`` saved as ``model.pt``; ``model.json`` holds
    ``identity`` (what the weights are: arch, input size), their digest and epoch, ``details`` (how they were
    trained), then the last row of the log."""

    weights: Callable[[], dict[str, torch.Tensor]]
    identity: dict[str, Any]
    details: dict[str, Any]


class Run:
    """One training run: what every trainer does the same way around :class:`Loop`.

    Made first, from arguments of a parser with :func:`add_loop_arguments`: it seeds torch, sets the
    threads, picks the device and makes ``--out``. The trainer then builds its data, model and loss on
    ``run.device`` and hands them to :meth:`fit`.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        torch.manual_seed(args.seed)
        if args.threads:
            torch.set_num_threads(args.threads)
        self.args = args
        self.device = pick_device(args.device)
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.progress = not args.no_progress
        self.amp = not args.no_amp and self.device.type == "cuda"

    def autocast(self) -> torch.autocast:
        return autocast(self.device, self.amp)

    def load_initial_weights(self, model: nn.Module, optional: tuple[str, ...] = ()) -> None:
        """``--init-from``, when given, into ``model`` (see :func:`load_initial_weights`)."""
        if self.args.init_from:
            load_initial_weights(model, resolve_init(self.args.init_from), optional)

    def fit(
        self,
        modules: dict[str, nn.Module],
        loader: Iterable,
        reseed: Callable[[int], None],
        net_input: Callable[[Any], torch.Tensor],
        step: Callable[[torch.Tensor, Any], tuple[torch.Tensor, dict[str, float]]],
        export: Export,
        *,
        title: str,
        summary: str,
        evaluators: Iterable[Evaluate | None] = (),
    ) -> dict:
        """Train up to ``--epochs`` (from ``--resume``'s checkpoint when given); returns the paths of
        ``model.pt`` and ``checkpoint.pt`` and the history.

        ``modules``: everything optimised and checkpointed, ``"model"`` the net that is evaluated,
        re-estimated and exported. ``loader``: an epoch's ``(inputs, targets)`` batches, in the order
        ``reseed(n)`` sets (``n`` the epoch). ``net_input(inputs)``: the net's input on the device.
        ``step(x, targets) -> (loss, metrics)``, under :meth:`autocast` where it wants. ``summary``:
        the data and model, for the start-up line. ``evaluators`` (None skipped): end-of-epoch hooks,
        their figures merged.
        """
        args, out, model = self.args, self.out, modules["model"]
        optimizer = build_optimizer([p for m in modules.values() for p in m.parameters()], args)
        scheduler = build_scheduler(optimizer, args, len(loader))
        loop = Loop(modules, optimizer, scheduler, self.device, out, amp=self.amp, clip_grad=args.clip_grad,
                    progress=self.progress, title=title, plot_every=args.plot_every)
        ckpt = resume_path(args)
        if ckpt is not None:
            loop.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True))
            print(f"# resumed from {ckpt} after epoch {loop.epoch}", file=sys.stderr)
        print(f"# {summary}, {self.device}{' AMP' if loop.amp else ''}", file=sys.stderr)
        hooks = [h for h in evaluators if h is not None]

        def evaluate(net: nn.Module) -> dict[str, float]:
            merged: dict[str, float] = {}
            for h in hooks:
                merged.update(h(net))
            return merged

        def make_loader(epoch: int) -> Iterable:
            reseed(epoch)
            return loader

        def recalibrate() -> None:
            if args.bn_recalibrate > 0:
                reseed(RECALIBRATION_DRAW + loop.epoch)  # a draw of its own; the next epoch reseeds
                batches = (net_input(inputs) for inputs, _ in itertools.islice(iter(loader), args.bn_recalibrate))
                with loop.autocast():
                    recalibrate_bn(model, batches)

        def save(lp: Loop) -> None:
            sd = export.weights()
            atomic_save(sd, out / "model.pt")
            meta = {**export.identity, "state_dict_sha256": state_dict_digest(sd), "epoch": lp.epoch,
                    **export.details, "last": lp.history[-1]}
            (out / "model.json").write_text(json.dumps(meta, indent=2, default=str))

        history = loop.run(
            args.epochs,
            make_loader,
            lambda batch: step(net_input(batch[0]), batch[1]),
            evaluate=evaluate if hooks else None,
            state_extra=lambda: {"args": vars(args)},
            on_epoch_end=save,
            before_eval=recalibrate,
        )
        if loop.epoch and not (out / "model.pt").is_file():
            save(loop)  # resumed a finished run: still leave the final weights
        return {"model": out / "model.pt", "checkpoint": out / "checkpoint.pt", "history": history}


def run_training_cli(build_parser: Callable[[], argparse.ArgumentParser], train: Callable, argv: list[str] | None,
                     evaluate: Callable | None) -> int:
    """Shared CLI wrapper of the trainers: user errors end in one line and exit code 2."""
    from ..registry import WeightsError

    args = build_parser().parse_args(argv)
    try:
        result = train(args, evaluate)
    except (ValueError, OSError, WeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    print(f"trained weights: {result['model']}  (log: {out / 'log.csv'}, plot: {out / 'curves.png'})")
    return 0
