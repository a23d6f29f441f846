"""Reading a whole number: the line reader counts and places the digits, the digit model reads them.

The line reader (a convolutional network with a CTC output, `models: line-ctc`, trained on
synthetic lines of training digits: `digitrec train --recipe numbers`) reads the whole line once and
says which digits it sees and where (the frames each digit is read at). Its answers are assigned to
the groups of ink of `pictures.segment.line` they lie over. A group where it sees one digit (or
none) is read by the digit model, as a single picture would be: the best reader for a digit that
stands apart. A group where it sees several (digits that touch or overlap, where no cut between
them exists) is split between the places it read them, and each part takes the line reader's
digit; each digit's box is the ink of its part.

A group is never split into more digits than its ink can hold (`capacity`): a narrow single stroke
is one digit however many times the line reader read it (it read one flagged 1 as "11"), and a
wider group holds at most one digit per MIN_PITCH of the line's height. When the line reader reads
more, its surest readings are kept. And a group the digit model reads as one digit, surely
(ONE_DIGIT_SURE: it learnt that two overlapping digits are not a digit), is one digit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from digitrec.models.calibration import DIGITS
from digitrec.models.networks import BLANK, LINE_STRIDE
from digitrec.pictures.lines import SIDE_PAD
from digitrec.pictures.segment import Group, Line


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int

    def to_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


@dataclass
class Emission:
    """One digit the line reader read: its class probabilities where it was surest, and where."""

    probs: np.ndarray  # (11,) at its surest frame: the ten digits, then blank
    column: float  # the line's working column of that frame's centre


@dataclass
class Part:
    """What one digit of the number is made of: a group, or a share of one, and who reads it."""

    group: Group
    left: int
    right: int
    emission: Emission | None  # the line reader's reading, for a share of a group of several digits


def emissions(model: nn.Module, ln: Line) -> list[Emission]:
    """The digits the line reader reads on the whole line, left to right (greedy CTC decoding)."""
    x, scale = ln.reader_input()
    with torch.inference_mode():
        probs = torch.softmax(model(torch.from_numpy(x)[None, None]).float(), -1)[0].numpy()  # (T, 11)
    out, last = [], BLANK
    for frame, c in enumerate(probs.argmax(1)):
        if c != BLANK and c != last:
            out.append((c, frame))
        elif c != BLANK and probs[frame, c] > probs[out[-1][1], c]:
            out[-1] = (c, frame)  # the same digit, read more surely here
        last = c
    return [Emission(probs[f], ((f + 0.5) * LINE_STRIDE - SIDE_PAD) / scale) for _, f in out]


# A digit's ink is at least this share of the line's height wide (two touching 1s side by side), and a
# group no wider than NARROW × the height, crossed once by most of its rows, is one stroke: one digit.
MIN_PITCH = 0.25
NARROW = 0.45
ONE_STROKE = 0.8  # share of the group's rows that cross the ink once, for it to be one stroke
# A group the line reader read as several digits is one digit when the digit model reads the whole group as
# one digit at least this surely (chosen on validation numbers: docs/writers.md)
ONE_DIGIT_SURE = 0.9


def capacity(group: Group, height: int) -> int:
    """The most digits a group's ink can hold (`height`: the line's ink height in working pixels)."""
    width = group.right - group.left
    if width <= NARROW * height and _single_stroke(group.mask):
        return 1
    return max(1, int(width // (MIN_PITCH * height)))


def _single_stroke(mask: np.ndarray) -> bool:
    """Whether most of the rows that hold ink cross it once (one run of ink pixels)."""
    rows = mask[mask.any(1)]
    runs = (np.diff(rows.astype(np.int8), axis=1) == 1).sum(1) + rows[:, 0]
    return bool(len(rows)) and float((runs == 1).mean()) >= ONE_STROKE


def parts(ln: Line, read: list[Emission], one_digit: Callable[[Group], bool] | None = None) -> list[Part]:
    """Each group as one part, or split between the places where the line reader read several digits
    (never more than the group's `capacity`: the surest readings are kept; and not at all where
    `one_digit(group)`, the digit model's word that the group is one digit, says so)."""
    owner = [min(range(len(ln.groups)), key=lambda g: _distance(ln.groups[g], e.column)) for e in read]
    height = ln.ink_height()
    out = []
    for g, group in enumerate(ln.groups):
        mine = _surest([e for e, o in zip(read, owner) if o == g], capacity(group, height))
        if len(mine) > 1 and one_digit is not None and one_digit(group):
            mine = []
        if len(mine) <= 1:
            out.append(Part(group, group.left, group.right, None))
            continue
        cuts = [group.left] + [int(round((a.column + b.column) / 2)) for a, b in zip(mine, mine[1:])] + [group.right]
        out += [Part(group, a, b, e) for a, b, e in zip(cuts, cuts[1:], mine)]
    return out


# Who reads a share of a group the line reader split: "line" (its own reading), "digit" (the digit model,
# on the share's ink), or "both" (the two readings' product, renormalised). Chosen on validation numbers
# (docs/numbers.md).
SHARES_READ_BY = "line"


def digit_model_reads_shares() -> bool:
    """Whether a share's reading needs the digit model's probabilities (not when the line reader alone reads
    it: then the digit model is not run on shares at all)."""
    return SHARES_READ_BY != "line"


def share_probabilities(emission: Emission, digit_model: np.ndarray | None) -> np.ndarray:
    """A share's ten digit probabilities as SHARES_READ_BY says (`digit_model`: the digit model's on the share,
    needed unless the line reader alone reads it). A share never takes the digit model's
    "not a digit": cut from its neighbour, it keeps a piece of it, and the digit model (which learnt
    that two overlapping digits are no digit) answered "not a digit" for so many shares that touching numbers fell from
    92% to 68% on validation. A letter is still flagged when it stands apart from the digits."""
    line = digit_probabilities(emission).astype(np.float64)
    if SHARES_READ_BY == "line":
        return line.astype(np.float32)
    digits = digit_model[:DIGITS].astype(np.float64)
    joint = digits if SHARES_READ_BY == "digit" else line * digits
    return (joint / max(float(joint.sum()), 1e-12)).astype(np.float32)


def _surest(read: list[Emission], most: int) -> list[Emission]:
    """The `most` surest of `read` (by their top digit probability), kept left to right."""
    if len(read) <= most:
        return read
    keep = sorted(range(len(read)), key=lambda i: -float(read[i].probs[:BLANK].max()))[:most]
    return [read[i] for i in sorted(keep)]


def digit_probabilities(emission: Emission) -> np.ndarray:
    """The line reader's ten digit probabilities where it read this digit (blank left out)."""
    digits = emission.probs[:BLANK]
    return (digits / max(float(digits.sum()), 1e-9)).astype(np.float32)


def _distance(group: Group, column: float) -> float:
    return max(group.left - column, column - group.right, 0.0)
