"""The world's digit styles: MNIST digits redrawn with the writing habits MNIST lacks.

MNIST was written by American Census staff and students. Many writers elsewhere put a flag and a
foot on their 1, a bar across their 7, a slash through their 0, an open top on their 4, a straight
stem on their 9 and a loop at the foot of their 2. Each habit here takes a real MNIST digit of its
class (28×28 uint8, ink bright), finds the place the habit changes (from the digit's own ink),
draws or erases a stroke of the digit's own width at four times the scale, and renders the result
the MNIST way again (`preprocess.normalize_ink`). Training mixes such digits in (the `styles`
setting); `bench/honesty.py` measures MNIST test digits restyled with another random stream.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from digitrec.pictures.preprocess import normalize_ink, stroke_width

SCALE = 4  # habits are drawn at 112×112, so their strokes are anti-aliased when shrunk
Habit = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class Canvas:
    """A digit upscaled to 112×112 float ink, with its geometry at 28×28 scale and a pen to draw on it."""

    def __init__(self, digit: np.ndarray) -> None:
        self.mask = digit > 76  # ink, at 28×28
        rows, cols = np.flatnonzero(self.mask.any(1)), np.flatnonzero(self.mask.any(0))
        self.top, self.bottom, self.left, self.right = rows[0], rows[-1], cols[0], cols[-1]
        self.height = self.bottom - self.top + 1
        self.width = self.right - self.left + 1
        self.pen = max(1.5, stroke_width(self.mask)) * SCALE
        big = Image.fromarray(digit).resize((28 * SCALE, 28 * SCALE), Image.Resampling.BICUBIC)
        self.ink = np.asarray(big, np.float32) / 255
        self.drawn = Image.new("L", big.size, 0)
        self.draw = ImageDraw.Draw(self.drawn)

    def columns_at(self, y: float) -> np.ndarray:
        """Ink columns of row y (28×28 scale), or of the nearest row that has ink."""
        for dy in (0, 1, -1, 2, -2):
            row = int(np.clip(round(y) + dy, 0, 27))
            cols = np.flatnonzero(self.mask[row])
            if len(cols):
                return cols
        return np.array([(self.left + self.right) / 2])

    def line(self, *points: tuple[float, float]) -> None:
        """A stroke through `points` (28×28 coordinates, pixel centres), with round ends."""
        xy = [((x + 0.5) * SCALE, (y + 0.5) * SCALE) for x, y in points]
        width = int(round(self.pen))
        self.draw.line(xy, fill=255, width=width, joint="curve")
        for x, y in (xy[0], xy[-1]):
            self.draw.ellipse((x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=255)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float) -> None:
        box = ((cx - rx + 0.5) * SCALE, (cy - ry + 0.5) * SCALE, (cx + rx + 0.5) * SCALE, (cy + ry + 0.5) * SCALE)
        self.draw.ellipse(box, outline=255, width=int(round(self.pen)))

    def erase(self, keep: np.ndarray) -> None:
        """Keep ink only where `keep` (112×112 bool) is true."""
        self.ink = np.where(keep, self.ink, 0.0)

    def render(self) -> np.ndarray:
        return normalize_ink(np.maximum(self.ink, np.asarray(self.drawn, np.float32) / 255))


def _grid() -> tuple[np.ndarray, np.ndarray]:
    """(y, x) of every 112×112 pixel centre, in 28×28 coordinates."""
    y, x = np.mgrid[0:28 * SCALE, 0:28 * SCALE]
    return (y + 0.5) / SCALE - 0.5, (x + 0.5) / SCALE - 0.5


def one_flag_foot(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 1 with a flag from its top down to the left, and usually a foot."""
    c = Canvas(digit)
    x_top, x_foot = c.columns_at(c.top).mean(), c.columns_at(c.bottom).mean()
    length, angle = rng.uniform(0.25, 0.42) * c.height, np.radians(rng.uniform(20, 55))
    c.line((x_top, c.top), (x_top - length * np.cos(angle), c.top + length * np.sin(angle)))
    if rng.random() < 0.75:
        half, tilt = rng.uniform(0.18, 0.3) * c.height, rng.uniform(-0.04, 0.04) * c.height
        c.line((x_foot - half, c.bottom + tilt), (x_foot + half, c.bottom - tilt))
    return c.render()


def seven_crossbar(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 7 with a short bar across its stem, a little below the middle."""
    c = Canvas(digit)
    y = c.top + rng.uniform(0.45, 0.62) * c.height
    x = c.columns_at(y).mean() + rng.uniform(-0.08, 0.08) * c.height
    half, tilt = rng.uniform(0.13, 0.22) * c.height, rng.uniform(-0.05, 0.05) * c.height
    c.line((x - half, y + tilt), (x + half, y - tilt))
    return c.render()


def zero_slash(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 0 with a slash from its lower left to its upper right, reaching a little past the oval."""
    c = Canvas(digit)
    over = rng.uniform(-0.05, 0.12, size=4)
    c.line((c.left + over[0] * c.width, c.bottom + over[1] * c.height),
           (c.right - over[2] * c.width, c.top - over[3] * c.height))
    return c.render()


def two_loop(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 2 with a small loop where its stroke turns into the foot."""
    c = Canvas(digit)
    y = c.bottom - rng.uniform(0.0, 0.08) * c.height
    x = c.columns_at(y).min()
    r = rng.uniform(0.13, 0.19) * c.height
    c.ellipse(x + r * rng.uniform(-0.1, 0.4), y - r * rng.uniform(0.9, 1.3), r * rng.uniform(0.8, 1.1), r * 0.85)
    return c.render()


def four_open(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 4 whose two top strokes do not meet: the ink around its highest point is lifted."""
    c = Canvas(digit)
    x = c.columns_at(c.top).mean()
    r = rng.uniform(0.12, 0.2) * c.height
    y_px, x_px = _grid()
    c.erase((y_px - c.top) ** 2 + (x_px - x) ** 2 > r * r)
    return c.render()


def nine_straight(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 9 whose tail is a straight stem down from the right of its loop."""
    c = Canvas(digit)
    cut = c.top + rng.uniform(0.45, 0.55) * c.height
    x = c.columns_at(cut).max()
    y_px, _ = _grid()
    c.erase(y_px < cut)
    lean = rng.uniform(-0.12, 0.05) * c.height
    c.line((x, cut - 0.1 * c.height), (x + lean, c.bottom))
    return c.render()


HABITS: dict[str, tuple[int, Habit]] = {  # name → (the digit it applies to, the habit)
    "1-flag-foot": (1, one_flag_foot),
    "7-crossbar": (7, seven_crossbar),
    "0-slash": (0, zero_slash),
    "4-open": (4, four_open),
    "9-straight": (9, nine_straight),
    "2-loop": (2, two_loop),
}


def restyle(images: np.ndarray, labels: np.ndarray, habit: str, rng: np.random.Generator) -> np.ndarray:
    """Every digit of `habit`'s class in (N, 28, 28) `images`, redrawn with the habit: (M, 28, 28) uint8."""
    label, draw = HABITS[habit]
    return np.stack([draw(d, rng) for d in images[labels == label]])


def restyled_bank(images: np.ndarray, labels: np.ndarray, per_habit: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`per_habit` restyled digits of each habit, drawn from `images`: ((N, 28, 28) uint8, (N,) labels)."""
    out, out_labels = [], []
    for label, draw in HABITS.values():
        pool = np.flatnonzero(labels == label)
        for i in rng.choice(pool, size=min(per_habit, len(pool)), replace=False):
            out.append(draw(images[i], rng))
            out_labels.append(label)
    return np.stack(out), np.asarray(out_labels, np.int64)
