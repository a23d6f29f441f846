"""Reading a whole number: the digit model scores every way of cutting the ink, and the best cut wins.

`pictures.segment.lattice` cuts the line's ink into atoms and renders every run of neighbouring
atoms that may be one digit. Each candidate goes through the digit model once (one batched call);
a candidate's score is the log-probability of its most probable digit, so a candidate that is half
a digit, two digits at once, or no digit at all (a model with a "not a digit" output says so
outright) scores low. Dynamic programming over the atoms, left to right, finds the sequence of
candidates with the highest total score plus `DIGIT_BONUS` per digit; an atom may be left out
(a speck, a stray mark) at a cost of `SKIP`. Both constants were chosen on numbers built from
validation digits (docs/predict.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

DIGIT_BONUS = 0.0  # added to each digit's log-probability: > 0 favours more, shorter digits
SKIP = -6.0  # the score of leaving one atom unread (a speck)


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int

    def to_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


def scores(probs: np.ndarray) -> np.ndarray:
    """Per candidate: the log-probability of its most probable digit (a "not a digit" output aside)."""
    return np.log(np.clip(probs[:, :10].max(1), 1e-9, None))


def best_path(n_atoms: int, spans: list[tuple[int, int]], score: np.ndarray, bonus: float = DIGIT_BONUS,
              skip: float = SKIP) -> list[int]:
    """Indices of the candidates (atom spans [first, last]) that read the atoms 0..n-1 best, left to right."""
    best = np.full(n_atoms + 1, -np.inf)
    best[0] = 0.0
    back: list[tuple[int, int]] = [(-1, -1)] * (n_atoms + 1)  # (previous end, candidate or -1 for a skip)
    ending: dict[int, list[int]] = {}
    for k, (_, last) in enumerate(spans):
        ending.setdefault(last + 1, []).append(k)
    for end in range(1, n_atoms + 1):
        if best[end - 1] + skip > best[end]:
            best[end], back[end] = best[end - 1] + skip, (end - 1, -1)
        for k in ending.get(end, []):
            start = spans[k][0]
            value = best[start] + score[k] + bonus
            if value > best[end]:
                best[end], back[end] = value, (start, k)
    path, end = [], n_atoms
    while end > 0:
        start, k = back[end]
        if k >= 0:
            path.append(k)
        end = start
    return path[::-1]


def reading_order(boxes: list[Box]) -> list[int]:
    """Left to right by the centre of each digit's box."""
    return sorted(range(len(boxes)), key=lambda i: boxes[i].x + boxes[i].width / 2)


def box_of(candidate: Any) -> Box:
    return Box(*candidate.box)
