"""Pictures of whole numbers made from real MNIST digits, with where each digit is.

Four kinds, each a number of 2-6 digits:

- apart: neighbours 2-8 pixels apart (at MNIST's 28-pixel scale);
- touching: neighbours overlap by 1-3 pixels, so their ink meets;
- overlapping: neighbours' boxes overlap by 5-30% of the narrower digit's width;
- photographed: one of the three above, photographed: uneven light, sensor noise, a slight
  rotation, JPEG;
- ones-sevens (benchmarks and tests only, not in KINDS): apart, four digits in five a 1 or a 7, the
  narrow single strokes a reader is most tempted to read twice.

The number reader's line model is trained on lines drawn from training digits (`training_line`),
its settings are chosen on lines from the validation digits, and bench/number_reading.py measures it
on lines from the test digits: the same drawing, three disjoint sets of digits (docs/numbers.md).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from digitrec.pictures.lines import reader_input

KINDS = ("apart", "touching", "overlapping", "photographed")
ONES_SEVENS = "ones-sevens"
MARGIN = 8  # blank columns left and right of the line, and 6 rows above and below (28-pixel scale)
SOLID = 128  # a digit's columns are those where its ink reaches half strength


def ink_columns(digit: np.ndarray) -> np.ndarray:
    """A (28, w) digit cut to the columns that hold ink (a blank digit stays whole)."""
    return digit[:, np.flatnonzero(digit.max(0) > 0)] if digit.any() else digit


def light_ramp(h: int, w: int, angle: float, spread: float = 1.0) -> np.ndarray:
    """(h, w) float64 in [0, 1]: light falling across a page in direction `angle` (radians), 0.5 at
    its centre; a `spread` under 1 makes the fall steeper (0.71: dark in one corner, full in the
    opposite one). Every made-up photo lights its paper with this."""
    y, x = np.mgrid[0:h, 0:w]
    ramp = (np.cos(angle) * (x / w - 0.5) + np.sin(angle) * (y / h - 0.5)) / spread + 0.5
    return np.clip(ramp, 0, 1)


def on_paper(ink: np.ndarray, paper: np.ndarray | float = 1.0, pen: float = 0.0) -> np.ndarray:
    """Ink coverage (H, W) in [0, 1] → grey uint8 picture of a `pen` stroke on `paper`."""
    grey = paper * (1 - ink) + pen * ink
    return (np.clip(grey, 0, 1) * 255 + 0.5).astype(np.uint8)


def number_line(digits: list[np.ndarray], gaps: list[int], scale: int = 4) -> tuple[Image.Image, list[tuple[int, int]]]:
    """MNIST digits side by side, cut to their ink columns, `gaps[i]` pixels (28-pixel scale; 0 = touching,
    negative = overlapping) between digit i and i+1; black on white, ×scale. Also each digit's columns
    [x0, x1) in the picture's pixels."""
    pieces = [ink_columns(d) for d in digits]
    width = sum(p.shape[1] for p in pieces) + sum(gaps) + 2 * MARGIN
    row = np.zeros((28, max(width, 28)), np.uint8)
    x, spans = MARGIN, []
    for piece, gap in zip(pieces, list(gaps) + [0]):
        w = piece.shape[1]
        row[:, x:x + w] = np.maximum(row[:, x:x + w], piece)
        solid = np.flatnonzero(piece.max(0) >= SOLID)  # the span a reader sees: faint edges aside
        first, last = (solid[0], solid[-1] + 1) if len(solid) else (0, w)
        spans.append(((x + first) * scale, (x + last) * scale))
        x += w + gap
    row = np.pad(row, ((6, 6), (0, 0)))
    size = (row.shape[1] * scale, row.shape[0] * scale)
    ink = np.asarray(Image.fromarray(row).resize(size, Image.Resampling.BICUBIC), np.float32) / 255
    return Image.fromarray(on_paper(ink)), spans


def ink_width(digit: np.ndarray) -> int:
    cols = np.flatnonzero(digit.max(0) > 0)
    return int(cols[-1] - cols[0] + 1) if len(cols) else 0


def gaps_for(kind: str, digits: list[np.ndarray], rng: np.random.Generator) -> list[int]:
    out = []
    for a, b in zip(digits, digits[1:]):
        if kind == "apart":
            out.append(int(rng.integers(2, 9)))
        elif kind == "touching":
            out.append(-int(rng.integers(1, 4)))
        else:
            out.append(-int(round(rng.uniform(0.05, 0.30) * min(ink_width(a), ink_width(b)))))
    return out


def photograph(picture: Image.Image, rng: np.random.Generator) -> bytes:
    """A phone photo of a paper number: grey paper lit unevenly, noise, a slight tilt, JPEG."""
    ink = 1 - np.asarray(picture.convert("L"), np.float32) / 255
    h, w = ink.shape
    ramp = light_ramp(h, w, rng.uniform(0, 2 * np.pi))
    light = rng.uniform(0.45, 0.7) + rng.uniform(0.25, 0.45) * ramp
    grey = light * (0.85 * (1 - ink) + 0.12 * ink) + rng.normal(0, 0.015, ink.shape)
    photo = Image.fromarray((np.clip(grey, 0, 1) * 255 + 0.5).astype(np.uint8))
    photo = photo.rotate(rng.uniform(-3, 3), resample=Image.Resampling.BILINEAR, expand=True,
                         fillcolor=int(np.median(np.asarray(photo))))
    buf = io.BytesIO()
    photo.save(buf, format="JPEG", quality=int(rng.integers(60, 91)))
    return buf.getvalue()


def number_lines(kind: str, n: int, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                 ) -> list[tuple[Image.Image | bytes, str, list[tuple[int, int]]]]:
    """`n` (picture, the number it shows, each digit's columns) of `kind`, from (N, 28, 28) `images`.
    A photographed picture is JPEG bytes, tilted a little: its columns are those before the tilt."""
    out = []
    narrow = np.flatnonzero((labels == 1) | (labels == 7))
    for _ in range(n):
        picks = rng.choice(len(images), size=int(rng.integers(2, 7)), replace=False)
        if kind == ONES_SEVENS:
            picks = np.where(rng.random(len(picks)) < 0.8, rng.choice(narrow, size=len(picks)), picks)
        digits = [images[i] for i in picks]
        base = {"photographed": KINDS[int(rng.integers(3))], ONES_SEVENS: "apart"}.get(kind, kind)
        picture, spans = number_line(digits, gaps_for(base, digits, rng))
        text = "".join(str(int(labels[i])) for i in picks)
        out.append((photograph(picture, rng) if kind == "photographed" else picture, text, spans))
    return out




def training_line(digits: list[np.ndarray], gaps: list[int], rng: np.random.Generator) -> np.ndarray:
    """MNIST digits side by side as a handwritten line: `gaps` as in `number_line`, each digit shifted up or
    down a little (baselines drift) → the line reader's (32, W) input, uint8."""
    pieces = [ink_columns(d) for d in digits]
    width = sum(p.shape[1] for p in pieces) + sum(gaps) + 8
    row = np.zeros((36, max(width, 8)), np.uint8)
    x = 4
    for piece, gap in zip(pieces, list(gaps) + [0]):
        y = 4 + int(rng.integers(-2, 3))
        w = piece.shape[1]
        row[y:y + 28, x:x + w] = np.maximum(row[y:y + 28, x:x + w], piece)
        x += w + gap
    return (reader_input(row.astype(np.float32) / 255) * 255 + 0.5).astype(np.uint8)
