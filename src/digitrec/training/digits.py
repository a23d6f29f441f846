"""What the training loop needs to know to train a digit model: its batches, loss and validation.

The loop (loop.py) is the same for every network; a task gives it the parts that differ. Here, the
digit models': batches of single 28x28 digits sliced from one uint8 tensor in an order that is a pure
function of (seed, epoch), a cross-entropy loss (label-smoothed as configured) and validation
accuracy on the held-out digits. The line model's task is lines.LineTask.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch import nn

from digitrec.data.dataset import Dataset
from digitrec.models.predict import predict_proba, to_input
from digitrec.training.config import TrainConfig
from digitrec.training.distributed import Dist
from digitrec.training.metrics import digit_answers


def epoch_permutation(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order of epoch `epoch`: a pure function of (seed, epoch), so a resumed run repeats it exactly."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n, generator=g)


class DigitTask:
    """Single digits: `train`'s images in a new order every epoch, each rank its slice of every batch."""

    max_grad_norm: float | None = None  # digit models train unclipped
    measure = "acc"  # validation: the share of digits answered right

    def __init__(self, cfg: TrainConfig, train: Dataset, val: Dataset | None, device: torch.device,
                 dist: Dist) -> None:
        self.cfg, self.device, self.dist, self.val = cfg, device, dist, val
        self.images = torch.from_numpy(train.images).to(device)  # (N, 28, 28) uint8
        self.labels = torch.from_numpy(train.labels).to(device)  # (N,) int64
        self.steps = dist.steps(len(train), cfg.batch_size)  # optimizer steps per epoch

    def batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, float]]:
        """(this rank's image indices, the weight of its loss) for every step of epoch `epoch`."""
        order = epoch_permutation(self.cfg.seed, epoch, len(self.images)).to(self.device)
        size = self.cfg.batch_size
        for i in range(self.steps):
            yield self.dist.shard_batch(order[i * size:(i + 1) * size])

    def inputs(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's input (B, 1, 28, 28) float in [0, 1] and the labels of the images `idx`."""
        return to_input(self.images[idx]), self.labels[idx]

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the mean loss, how many of the batch the network answered right)."""
        loss = nn.functional.cross_entropy(logits.float(), labels, label_smoothing=self.cfg.label_smoothing)
        return loss, (logits.argmax(1) == labels).sum()

    def validate(self, model: nn.Module) -> tuple[float | None, float | None]:
        """(mean negative log-likelihood, accuracy) on the validation digits; None without any."""
        if self.val is None or len(self.val) == 0:
            return None, None
        images, labels = self.dist.shard(self.val.images), self.dist.shard(self.val.labels)  # this rank's part
        probs = predict_proba(model, images, device=self.device)
        nll = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))
        loss_sum, hits, n = self.dist.sum_values(nll.sum(dtype=np.float64), (digit_answers(probs) == labels).sum(),
                                                 len(labels))
        return loss_sum / n, hits / n
