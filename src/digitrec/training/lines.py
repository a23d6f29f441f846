"""What the training loop needs to know to train the line reader (models: line-ctc).

The number reader reads a group of ink that holds more than one digit (digits that touch or overlap)
with this network. It learns from lines of 1-6 training digits drawn the way `synth.lines` draws
numbers (apart, touching, overlapping; baselines drifting), `TrainConfig.lines` fresh ones every
epoch, and is judged after every epoch on lines of the validation digits (the share read exactly).
`digitrec train --recipe numbers` runs it through the one training loop (loop.Trainer), so device,
optimizer, augmentation, EMA, checkpoints, --resume and --nproc work as for any run; `LineTask` gives
that loop the parts that differ: batches of lines of varying width, a CTC loss and the measure.

Every epoch's lines come from a generator seeded with (seed, epoch): a resumed run draws exactly the
lines an unbroken one would have, with nothing more in the checkpoint.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from digitrec.data.dataset import Dataset
from digitrec.models.networks import BLANK, LINE_HEIGHT, LINE_STRIDE
from digitrec.synth.lines import KINDS, gaps_for, training_line
from digitrec.training.config import TrainConfig
from digitrec.training.distributed import Dist

LINES_PER_EPOCH = 40_000  # when TrainConfig.lines is 0
VAL_LINES = 2000
VAL_SEED_OFFSET = 1  # the validation lines' generator: seed + 1 (the shipped file's 95.65% was measured so)
LENGTHS = (1, 2, 3, 4, 5, 6)
LENGTH_WEIGHTS = (0.06, 0.2, 0.2, 0.2, 0.17, 0.17)
KIND_WEIGHTS = (0.25, 0.4, 0.35)  # apart, touching, overlapping
MAX_GRAD_NORM = 5.0  # CTC's gradients spike on lines it cannot align yet

Line = tuple[np.ndarray, list[int]]  # (LINE_HEIGHT, W) uint8 ink, its digits


def draw_lines(n: int, data: Dataset, rng: np.random.Generator) -> list[Line]:
    """`n` lines of `data`'s digits, each with the digits it shows."""
    out = []
    lengths = rng.choice(LENGTHS, size=n, p=LENGTH_WEIGHTS)
    kinds = rng.choice(3, size=n, p=KIND_WEIGHTS)
    for length, kind in zip(lengths, kinds):
        picks = rng.integers(len(data), size=int(length))
        digits = [data.images[i] for i in picks]
        out.append((training_line(digits, gaps_for(KINDS[kind], digits, rng), rng), data.labels[picks].tolist()))
    return out


def width_groups(lines: list[Line], size: int, keep: int | None = None) -> list[list[int]]:
    """Indices of `lines` in groups of `size` of similar width (less padding); only the first `keep`
    groups (the narrowest), when given."""
    order = sorted(range(len(lines)), key=lambda i: lines[i][0].shape[1])
    groups = [order[i:i + size] for i in range(0, len(order), size)]
    return groups[:keep] if keep is not None else groups


def pad(lines: list[Line], idx: list[int]) -> torch.Tensor:
    """(B, 1, LINE_HEIGHT, widest) float in [0, 1]: the lines `idx`, padded on the right with no ink."""
    width = max(lines[i][0].shape[1] for i in idx)
    x = np.zeros((len(idx), 1, LINE_HEIGHT, width), np.float32)
    for row, i in enumerate(idx):
        x[row, 0, :, :lines[i][0].shape[1]] = lines[i][0] / 255.0
    return torch.from_numpy(x)


def decode(logits: torch.Tensor) -> list[list[int]]:
    """Greedy CTC decoding of (B, T, 11) logits: the most probable class per frame, repeats joined, blanks
    dropped."""
    best = logits.argmax(-1).tolist()
    out = []
    for frames in best:
        seq, last = [], BLANK
        for c in frames:
            if c != last and c != BLANK:
                seq.append(c)
            last = c
        out.append(seq)
    return out


def ctc_loss(logits: torch.Tensor, targets: list[list[int]]) -> torch.Tensor:
    """The mean CTC loss of (B, T, 11) logits for the digit sequences `targets`."""
    log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (T, B, 11)
    frames = torch.full((len(targets),), log_probs.shape[0], dtype=torch.long)
    lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    flat = torch.tensor([d for t in targets for d in t], dtype=torch.long, device=log_probs.device)
    return nn.functional.ctc_loss(log_probs, flat, frames, lengths, blank=BLANK, zero_infinity=True)


class LineTask:
    """Lines of digits: fresh ones every epoch from a generator seeded with (seed, epoch), in groups of
    similar width; each rank its slice of every group."""

    max_grad_norm: float | None = MAX_GRAD_NORM
    measure = "exact"  # validation: the share of numbers read exactly

    def __init__(self, cfg: TrainConfig, train: Dataset, val: Dataset | None, device: torch.device,
                 dist: Dist) -> None:
        self.cfg, self.train, self.device, self.dist = cfg, train, device, dist
        self.per_epoch = cfg.lines or LINES_PER_EPOCH
        val_rng = np.random.default_rng(cfg.seed + VAL_SEED_OFFSET)
        self.val_lines = draw_lines(VAL_LINES, val, val_rng) if val is not None and len(val) else []
        self.steps = dist.steps(self.per_epoch, cfg.batch_size)  # a last group too small for every rank is skipped
        self.lines: list[Line] = []  # this epoch's

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, float]]:
        """(this rank's line indices, the weight of its loss) for every step of epoch `epoch`."""
        rng = np.random.default_rng((self.cfg.seed, epoch))
        self.lines = draw_lines(self.per_epoch, self.train, rng)
        groups = width_groups(self.lines, self.cfg.batch_size, self.steps)
        rng.shuffle(groups)
        for group in groups:
            yield self.dist.shard_batch(torch.tensor(group))

    def inputs(self, idx: torch.Tensor) -> tuple[torch.Tensor, list[list[int]]]:
        """The network's input (B, 1, 32, W) and the digits of this epoch's lines `idx`."""
        picked = idx.tolist()
        return pad(self.lines, picked).to(self.device), [self.lines[i][1] for i in picked]

    def loss(self, logits: torch.Tensor, targets: list[list[int]]) -> tuple[torch.Tensor, None]:
        """(the mean CTC loss, None): a training line read right is not counted (decoding costs a step)."""
        return ctc_loss(logits, targets), None

    def validate(self, model: nn.Module) -> tuple[float | None, float | None]:
        """(mean CTC loss, share of validation lines read exactly); None without validation digits."""
        if not self.val_lines:
            return None, None
        mine = [self.val_lines[i] for i in self.dist.shard(np.arange(len(self.val_lines)))]  # this rank's
        was_training, loss_sum, right = model.training, 0.0, 0
        model.eval()
        with torch.inference_mode():
            for group in width_groups(mine, 128):
                logits = model(pad(mine, group).to(self.device))
                targets = [mine[i][1] for i in group]
                loss_sum += ctc_loss(logits, targets).item() * len(group)
                right += sum(a == b for a, b in zip(decode(logits), targets))
        model.train(was_training)
        loss_sum, right, n = self.dist.sum_values(loss_sum, right, len(mine))
        return loss_sum / n, right / n


def line_metadata(task: LineTask, val_exact: float | None) -> dict[str, Any]:
    """What a line model's file says beside any run's: its input, and the share of validation lines
    read exactly (its measure, in place of a digit model's accuracies)."""
    ink = "bright on 0, rows scaled to 28"
    return {"input": {"line_height": LINE_HEIGHT, "frame_columns": LINE_STRIDE, "ink": ink},
            "metrics": {"val_numbers_exact": val_exact, "val_lines": len(task.val_lines)}}
