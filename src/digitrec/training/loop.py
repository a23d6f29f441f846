"""The training loop, one for every network: device, optimizer, augmentation, EMA, checkpoints every
epoch, resume, data parallelism.

What differs between kinds of model comes from a task: its batches, its loss and its validation
measure. Digit models (digits.DigitTask) slice batches from one uint8 tensor; the line model
(lines.LineTask) draws lines of digits and trains with a CTC loss. Why no DataLoader: MNIST fits in
memory as a 47 MB uint8 tensor, and slicing it with a random permutation costs microseconds, while a
DataLoader over a TensorDataset spends most of an epoch in Python collating single images.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import torch
from torch import nn
from tqdm import tqdm

from digitrec.data.augment import get_augment
from digitrec.data.dataset import Dataset
from digitrec.errors import DigitrecError
from digitrec.models import create_model, reads, with_tta
from digitrec.models.modelfile import load_checkpoint, load_state
from digitrec.training.config import TrainConfig
from digitrec.training.digits import DigitTask
from digitrec.training.distributed import Dist
from digitrec.training.finetune import init_path, init_weights
from digitrec.training.lines import LineTask
from digitrec.training.native import optim
from digitrec.training.native.flatparams import flatten_parameters
from digitrec.training.native.kernels import training_view
from digitrec.training.runfolder import RunFolder
from digitrec.util.device import pick_device, set_threads


@dataclass
class EpochStats:
    """One epoch's figures; None where a figure does not apply (no validation set; a line model's
    training lines, which are not decoded), so history.json holds null, never NaN."""

    epoch: int
    train_loss: float
    train_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    lr: float


class Task(Protocol):
    """What differs between kinds of model (digits.DigitTask, lines.LineTask); the loop does the rest."""

    steps: int  # optimizer steps per epoch
    max_grad_norm: float | None  # clip the gradients' norm to this; None: no clipping
    measure: str  # the validation measure's name in the log: "acc", or "exact" (numbers read exactly)

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, float]]:
        """(this rank's part of each global batch of epoch `epoch`, the weight of its loss)."""

    def inputs(self, idx: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """(the network's input on the task's device, the targets) of the batch `idx`."""

    def loss(self, logits: torch.Tensor, targets: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(mean loss, how many of the batch were answered right, or None where that is not counted)."""

    def validate(self, model: nn.Module) -> tuple[float | None, float | None]:
        """(validation loss, validation measure), summed over all ranks; None where there is none."""


def make_task(cfg: TrainConfig, train: Dataset, val: Dataset | None, device: torch.device, dist: Dist) -> Task:
    """The task of `cfg`'s model: lines for a line model, single digits for any other."""
    kind = LineTask if reads(cfg.model) == "line" else DigitTask
    return kind(cfg, train, val, device, dist)


# --- building blocks ---


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    """The optimizer of `cfg` over `params` (the model's parameters, or their flat buffer): PyTorch's,
    stepping a flat buffer in one native pass (optim.py)."""
    if cfg.optimizer == "sgd":
        return optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(cfg: TrainConfig, step: int, total: int) -> float:
    """Multiplier of the base learning rate at `step` of `total`."""
    if cfg.schedule == "constant":
        return 1.0
    warm = max(1, int(cfg.warmup * total))
    if step < warm and cfg.warmup > 0:
        return (step + 1) / warm
    progress = (step - warm) / max(1, total - warm) if cfg.warmup > 0 else step / max(1, total)
    if cfg.schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))  # onecycle: cosine anneal after warm-up


class WeightEMA:
    """Exponential moving average of the weights; evaluation and the saved model use it."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v, 1 - self.decay)
            else:
                self.shadow[k].copy_(v)


# --- the loop ---


class Trainer:
    """One training run in the run folder `out_dir`: fresh, or resumed from its last checkpoint."""

    def __init__(self, cfg: TrainConfig, train_ds: Dataset, val_ds: Dataset | None, out_dir: Path,
                 log: Callable[[str], None] = print, progress: bool | None = None, dist: Dist | None = None) -> None:
        cfg.validate()
        set_threads(cfg.threads)
        self.dist = dist or Dist()  # only rank 0 of a distributed run logs and writes files
        self.cfg, self.run_folder = cfg, RunFolder(out_dir)
        self.log, self.progress = (log, progress) if self.dist.is_main else (lambda _: None, False)
        self.device = self.dist.start(pick_device(cfg.device), cfg.threads, cfg.batch_size)
        torch.manual_seed(cfg.seed)
        self.model = create_model(cfg.model, **cfg.model_arguments()).to(self.device)
        if cfg.init:  # fine-tuning: start from a model file's weights (a resumed run then loads its checkpoint)
            load_state(self.model, init_weights(cfg.init), init_path(cfg.init))
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.model, self.net = self.dist.wrap(self.model, cfg.seed)  # net: DDP around model, or model itself
        if self.dist.world == 1:  # the same layers and parameters, trained through native kernels (kernels.py)
            self.net = training_view(self.model, self.log)
        # one flat tensor for the optimizer (flatparams); DDP keeps its own per-parameter gradient buckets
        self.flat = flatten_parameters(self.model) if self.dist.world == 1 else None
        self.optimizer = make_optimizer(cfg, [self.flat] if self.flat is not None else self.model.parameters())
        self.augment = get_augment(cfg.augment)
        self.ema = WeightEMA(self.model, cfg.ema) if cfg.ema > 0 else None
        self.task = make_task(cfg, train_ds, val_ds, self.device, self.dist)
        self.history: list[EpochStats] = []
        self.start_epoch = 1
        self.steps_per_epoch = self.task.steps

    def resume(self) -> None:
        """Restore model, optimizer, EMA and history from the last end-of-epoch checkpoint."""
        path = self.run_folder.checkpoint
        states, info = load_checkpoint(path)
        load_state(self.model, states["model"], path)
        try:
            self.optimizer.load_state_dict(states["optimizer"])
        except ValueError as exc:  # e.g. a checkpoint of a distributed run, whose optimizer saw each tensor
            raise DigitrecError(f"{path}: optimizer state does not fit this run ({exc})") from None
        if self.ema is not None and "ema" in states:
            self.ema.shadow = states["ema"]
        if "rng" in states and self.dist.world == 1:  # the same random augmentations as an unbroken run
            torch.set_rng_state(states["rng"])
        self.history = [EpochStats(**row) for row in info["history"]]
        self.start_epoch = info["epoch"] + 1

    def run(self, on_epoch_end: Callable[[EpochStats], None] | None = None,
            checkpoints: bool = True) -> list[EpochStats]:
        """Train the remaining epochs; `on_epoch_end` lets benchmarks measure between epochs."""
        for epoch in range(self.start_epoch, self.cfg.epochs + 1):
            stats = self._epoch(epoch)
            self.history.append(stats)
            if checkpoints and self.dist.is_main:
                self._checkpoint(epoch)
                self.run_folder.write_history([asdict(h) for h in self.history])
            self.log(format_epoch(stats, self.cfg.epochs, self.task.measure))
            if on_epoch_end is not None:
                on_epoch_end(stats)
        return self.history

    def _epoch(self, epoch: int) -> EpochStats:
        cfg, model = self.cfg, self.model
        model.train()
        if cfg.freeze_bn:  # normalise with the statistics the model was trained with (fine-tuning)
            for layer in model.modules():
                if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                    layer.eval()
        start = time.perf_counter()
        total_steps = self.steps_per_epoch * cfg.epochs
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        counted = False  # whether the task counts answers right (a line model's does not)
        seen, lr = 0, cfg.lr  # pictures this rank trained on this epoch
        bar = tqdm(self.task.batches(epoch), total=self.steps_per_epoch, desc=f"epoch {epoch}/{cfg.epochs}",
                   leave=False, disable=(not self.progress) if self.progress is not None else None, unit="batch")
        for i, (idx, weight) in enumerate(bar):
            step = (epoch - 1) * self.steps_per_epoch + i
            lr = cfg.lr * lr_factor(cfg, step, total_steps)
            loss, hits = self._step(idx, lr, weight)
            loss_sum += loss * len(idx)
            if hits is not None:
                correct, counted = correct + hits, True
            seen += len(idx)
            if i % 50 == 49 or i == self.steps_per_epoch - 1:
                bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}",
                                **({"acc": f"{correct.item() / seen:.4f}"} if counted else {}))
        seconds = time.perf_counter() - start
        self.dist.average_buffers(self.model, self.ema.shadow if self.ema else None)
        val_loss, val_measure = self.validate()
        loss_total, correct_total, n = self.dist.sum_values(loss_sum, correct, seen)  # over all ranks
        return EpochStats(epoch, loss_total / n, correct_total / n if counted else None, val_loss, val_measure,
                          seconds, lr)

    def _step(self, idx: torch.Tensor, lr: float, weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One optimizer step on the batch `idx` (the task's indices); (its loss, answers right or None)."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, targets = self.task.inputs(idx)
        if self.augment is not None:
            x = self.augment(x)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            logits = self.net(x)
        loss, hits = self.task.loss(logits, targets)
        self.optimizer.zero_grad(set_to_none=self.flat is None)  # None would cut the flat gradient's views loose
        (loss * weight).backward()  # weight: this rank's share of a global batch (Dist.shard_batch)
        if self.task.max_grad_norm is not None:  # after backward: DDP has summed the ranks' gradients
            params = [self.flat] if self.flat is not None else list(self.model.parameters())
            nn.utils.clip_grad_norm_(params, self.task.max_grad_norm)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return loss.detach(), hits

    def final_model(self, tta: bool = True) -> nn.Module:
        """The model to evaluate and save: the EMA weights when EMA is on, inside test-time
        augmentation when the config asks for it (`tta=False`: the bare network, for per-epoch checks)."""
        final = self.model
        if self.ema is not None:
            final = create_model(self.cfg.model, **self.cfg.model_arguments()).to(self.device)
            final.load_state_dict(self.ema.shadow)
        return with_tta(final, self.cfg.tta).to(self.device) if tta else final

    def validate(self) -> tuple[float | None, float | None]:
        """(validation loss, the task's measure: digits answered right, or numbers read exactly), of the
        bare network the run would save; None without validation pictures."""
        return self.task.validate(self.final_model(tta=False))

    def _checkpoint(self, epoch: int) -> None:
        states = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
        if self.ema is not None:
            states["ema"] = self.ema.shadow
        if self.dist.world == 1:  # augmentation and dropout draw from it; ranks each have their own
            states["rng"] = torch.get_rng_state()
        info = {"epoch": epoch, "history": [asdict(h) for h in self.history], "config": self.cfg.to_dict()}
        self.run_folder.save_checkpoint(states, info)


def format_epoch(s: EpochStats, epochs: int, measure: str = "acc") -> str:
    """One line per epoch; `measure` names the validation measure ("exact": numbers read exactly)."""
    def show(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    train_acc = f" acc {show(s.train_accuracy)}" if s.train_accuracy is not None else ""
    return (f"epoch {s.epoch:>2}/{epochs}  train loss {show(s.train_loss)}{train_acc}  "
            f"val loss {show(s.val_loss)} {measure} {show(s.val_accuracy)}  {s.seconds:.1f}s")
