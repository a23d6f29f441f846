"""Training the line reader (models: line-ctc): synthetic lines of training digits, a CTC loss.

The number reader reads a group of ink that holds more than one digit (digits that touch or overlap)
with this network. It learns from lines of 1-6 MNIST training digits drawn the way
`synth.lines` draws numbers (apart, touching, overlapping; baselines drifting), each a fresh
random draw for every epoch, and is judged after every epoch on lines of the validation digits (the
share read exactly). `digitrec train --recipe numbers` runs it; the run folder and model file are
those of any run.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Callable

import numpy as np
import torch
from torch import nn

from digitrec.data import dataset as datamod
from digitrec.data.augment import random_stroke
from digitrec.models import count_parameters, create_model
from digitrec.models.networks import BLANK, LINE_STRIDE
from digitrec.synth.lines import KINDS, gaps_for, training_line
from digitrec.training.config import TrainConfig
from digitrec.training.loop import EpochStats, format_epoch, lr_factor
from digitrec.training.runfolder import RunFolder
from digitrec.util.device import set_threads

LINES_PER_EPOCH = 40_000
VAL_LINES = 2000
LENGTHS = (1, 2, 3, 4, 5, 6)
LENGTH_WEIGHTS = (0.06, 0.2, 0.2, 0.2, 0.17, 0.17)
KIND_WEIGHTS = (0.25, 0.4, 0.35)  # apart, touching, overlapping


def draw_lines(n: int, data: datamod.Dataset, rng: np.random.Generator) -> list[tuple[np.ndarray, list[int]]]:
    """`n` (line (32, W) uint8, its digits) from `data`'s digits."""
    out = []
    lengths = rng.choice(LENGTHS, size=n, p=LENGTH_WEIGHTS)
    kinds = rng.choice(3, size=n, p=KIND_WEIGHTS)
    for length, kind in zip(lengths, kinds):
        picks = rng.integers(len(data), size=int(length))
        digits = [data.images[i] for i in picks]
        out.append((training_line(digits, gaps_for(KINDS[kind], digits, rng), rng), data.labels[picks].tolist()))
    return out


def batches(lines: list, size: int, rng: np.random.Generator | None = None):
    """Batches of lines of similar width (less padding), in random order when `rng` is given."""
    order = sorted(range(len(lines)), key=lambda i: lines[i][0].shape[1])
    groups = [order[i:i + size] for i in range(0, len(order), size)]
    if rng is not None:
        rng.shuffle(groups)
    for group in groups:
        width = max(lines[i][0].shape[1] for i in group)
        x = np.zeros((len(group), 1, 32, width), np.float32)
        for row, i in enumerate(group):
            x[row, 0, :, :lines[i][0].shape[1]] = lines[i][0] / 255.0
        yield torch.from_numpy(x), [lines[i][1] for i in group]


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
    log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (T, B, 11)
    frames = torch.full((len(targets),), log_probs.shape[0], dtype=torch.long)
    lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    flat = torch.tensor([d for t in targets for d in t], dtype=torch.long)
    return nn.functional.ctc_loss(log_probs, flat, frames, lengths, blank=BLANK, zero_infinity=True)


def exact_share(model: nn.Module, lines: list) -> float:
    model.eval()
    right = 0
    with torch.inference_mode():
        for x, targets in batches(lines, 128):
            right += sum(a == b for a, b in zip(decode(model(x)), targets))
    model.train()
    return right / max(1, len(lines))


def train_line_reader(cfg: TrainConfig, out_dir, log: Callable[[str], None] = print):
    """Train `cfg` (a `line-ctc` model) into the run folder `out_dir`; returns (model file, history)."""
    set_threads(cfg.threads)
    run = RunFolder(out_dir)
    run.prepare()
    full = datamod.load(cfg.data, "train", cfg.data_dir)
    train, val = datamod.train_val_split(full, cfg.val_size)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **cfg.model_kwargs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    val_lines = draw_lines(VAL_LINES if len(val) else 0, val, np.random.default_rng(cfg.seed + 1)) if len(val) else []
    per_epoch = cfg.subset or LINES_PER_EPOCH
    total = cfg.epochs * math.ceil(per_epoch / cfg.batch_size)
    run.save_config(cfg)
    history, step = [], 0
    for epoch in range(1, cfg.epochs + 1):
        start, losses = time.perf_counter(), []
        for x, targets in batches(draw_lines(per_epoch, train, rng), cfg.batch_size, rng):
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * lr_factor(cfg, step, total)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):  # twice as fast on this CPU
                logits = model(random_stroke(x))
            loss = ctc_loss(logits, targets)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            losses.append(loss.item())
            step += 1
        exact = exact_share(model, val_lines) if val_lines else float("nan")
        history.append(EpochStats(epoch, float(np.mean(losses)), float("nan"), float("nan"), exact,
                                  time.perf_counter() - start, optimizer.param_groups[0]["lr"]))
        run.write_history([asdict(h) for h in history])
        log(format_epoch(history[-1], cfg.epochs) + "  (val: numbers read exactly)")
    meta = {"training": {**asdict(cfg), "epochs_done": len(history)}, "parameters": count_parameters(model),
            "input": {"line_height": 32, "frame_columns": LINE_STRIDE, "ink": "bright on 0, rows scaled to 28"},
            "metrics": {"val_numbers_exact": history[-1].val_accuracy if history else None,
                        "val_lines": len(val_lines)}}
    return run.save_model(model.eval(), meta), history
