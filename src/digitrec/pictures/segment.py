"""A picture of a number (one line, such as "2026") → its groups of ink, ready for the two readers.

The ink is found once for the whole line (`preprocess.ink_map`, at a scale set by the line's
height: the line is read 96 pixels tall whatever its length). Its 8-connected blobs are grouped: a
blob much shorter than the line (the detached bar of a 5, a broken stem) joins the blob whose
columns it overlaps. A group is one digit, or several digits whose ink touches or overlaps: nothing
here decides which; `inference.numbers` asks the line reader. For each group this module renders
what the digit model reads (the group as one MNIST-style 28×28 digit), and for the whole line what
the line reader reads (`pictures.lines.reader_input`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from digitrec.errors import DigitrecError
from digitrec.pictures.decode import ImageSource, describe, open_image, to_gray
from digitrec.pictures.lines import INK_HEIGHT, reader_input
from digitrec.pictures.preprocess import (
    MNIST_STROKE,
    THIN,
    InkMap,
    centre_by_mass,
    fit_box,
    ink_map,
    stroke_width,
    thicken_in_place,
)

FRAGMENT = 0.6  # a blob shorter than this fraction of the line's height is a piece of a digit
MAX_DIGITS = 20  # longer numbers are refused rather than read slowly
MAX_WIDTH = 20_000  # pixels; wider pictures are refused before decoding
LINE_HEIGHT = 96  # the line is read at this height (pixels): digits are shrunk to it


@dataclass
class Group:
    """Blobs of ink read together: one digit, or digits that touch or overlap."""

    mask: np.ndarray  # (bottom - top, right - left) bool: the group's own ink in its box
    top: int
    left: int  # the box in the line's working pixels
    right: int
    bottom: int


@dataclass
class Line:
    ink: np.ndarray  # (H, W) float32, the line's ink in [0, 1] (bright = ink), at the working scale
    mask: np.ndarray  # (H, W) bool, strokes as wide as MNIST's
    groups: list[Group] = field(default_factory=list)  # left to right
    scale: float = 1.0  # the original picture's pixels per working pixel
    blank: bool = False
    source: str = ""

    def digit(self, group: Group, left: int | None = None, right: int | None = None) -> np.ndarray:
        """The group (or its columns [left, right) of the line) as one MNIST-style 28×28 digit."""
        a, b = max(group.left, left or group.left), min(group.right, right or group.right)
        keep = ndi.binary_dilation(group.mask[:, a - group.left:b - group.left])  # its soft edges too
        grey = np.where(keep, self.ink[group.top:group.bottom, a:b], 0.0)
        rows, cols = np.flatnonzero((grey > 0.1).any(1)), np.flatnonzero((grey > 0.1).any(0))
        if not len(rows):
            return np.zeros((28, 28), np.uint8)
        return centre_by_mass(fit_box(grey[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]))

    def box(self, group: Group, left: int | None = None, right: int | None = None) -> tuple[int, int, int, int]:
        """x, y, width, height of the group's ink (or of its columns [left, right)) in the picture's pixels."""
        a, b = max(group.left, left or group.left), min(group.right, right or group.right)
        part = group.mask[:, a - group.left:b - group.left]
        rows, cols = np.flatnonzero(part.any(1)), np.flatnonzero(part.any(0))
        if not len(rows):
            rows, cols = np.array([0, group.bottom - group.top - 1]), np.array([0, max(0, b - a - 1)])
        x, y = a + cols[0], group.top + rows[0]
        w, h = cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1
        s = self.scale
        return int(x * s), int(y * s), int(np.ceil(w * s)), int(np.ceil(h * s))

    def ink_height(self) -> int:
        """Rows from the line's top ink to its bottom ink, in working pixels (1 for a blank line)."""
        return _line_height(self.mask) if self.mask.any() else 1

    def reader_input(self) -> tuple[np.ndarray, float]:
        """What the line reader reads: (32, W') float32 of the line's rows; and its pixels per working pixel
        (its column c is the line's working column (c - SIDE_PAD) / that)."""
        rows = np.flatnonzero(self.mask.any(1))
        top, bottom = rows[0], rows[-1] + 1
        ink = np.where(ndi.binary_dilation(self.mask), self.ink, 0.0)[top:bottom]
        return reader_input(ink), INK_HEIGHT / (bottom - top)


def line(image: ImageSource, name: str | None = None) -> Line:
    """The groups of ink of a one-line picture of a number (see the module's docstring)."""
    name = name or describe(image)
    ink, scale = line_ink(image, name)
    if ink.blank:
        return Line(np.zeros((1, 1), np.float32), np.zeros((1, 1), bool), [], scale, True, name)
    height = _line_height(ink.mask)
    if _rough_count(ink.mask, height) > 1.5 * MAX_DIGITS:  # before the work grows with it
        raise too_many_digits(name)
    mask = mnist_strokes(ink.mask, height)
    return Line(np.clip(ink.ink, 0, 1), mask, _groups(mask, height), scale, False, name)


def line_ink(image: ImageSource, name: str) -> tuple[InkMap, float]:
    """The line's ink, read at LINE_HEIGHT pixels of height (and the original pixels per working pixel)."""
    img = open_image(image, name)
    if img.width > MAX_WIDTH:
        raise DigitrecError(f"{name}: picture is {img.width:,} pixels wide; a number may be at most "
                            f"{MAX_WIDTH:,} wide")
    gray = to_gray(img, max_height=LINE_HEIGHT, max_side=MAX_WIDTH)
    return ink_map(gray, name), img.height / gray.shape[0]


def mnist_strokes(mask: np.ndarray, height: int) -> np.ndarray:
    """The line's ink with strokes as wide as MNIST's, relative to the line's height: once for the line,
    as `preprocess.render_digit` widens a single digit's thin strokes."""
    stroke = stroke_width(mask) / height
    if stroke >= THIN * MNIST_STROKE:
        return mask
    return thicken_in_place(mask, (MNIST_STROKE - stroke) * height / 2)


def too_many_digits(name: str) -> DigitrecError:
    return DigitrecError(f"{name}: holds more than {MAX_DIGITS} digits; a number is read {MAX_DIGITS} digits "
                         "at a time at most")


def _line_height(mask: np.ndarray) -> int:
    rows = np.flatnonzero(mask.any(1))
    return int(rows[-1] - rows[0] + 1)


def _rough_count(mask: np.ndarray, height: int) -> float:
    """About how many digits the ink holds: its blobs, or its inked columns over a digit's width."""
    _, blobs = ndi.label(mask, structure=np.ones((3, 3)))
    return max(blobs / 2, int(mask.any(0).sum()) / (0.75 * height))


def _groups(mask: np.ndarray, height: int) -> list[Group]:
    labels, _ = ndi.label(mask, structure=np.ones((3, 3)))
    boxes = ndi.find_objects(labels)
    out = []
    for ids, left, right in merge_fragments(labels, boxes, height):
        rows = [r for i in ids for r in (boxes[i - 1][0].start, boxes[i - 1][0].stop)]
        top, bottom = min(rows), max(rows)
        out.append(Group(np.isin(labels[top:bottom, left:right], ids), top, left, right, bottom))
    return sorted(out, key=lambda g: (g.left + g.right) / 2)


def merge_fragments(labels: np.ndarray, boxes: list, height: int) -> list[tuple[list[int], int, int]]:
    """(blob ids, left, right) per group: each blob shorter than FRAGMENT × the height joins the blob
    whose columns it overlaps most (a detached bar, a broken stem), else stays on its own."""
    groups = [([i + 1], b[1].start, b[1].stop, b[0].stop - b[0].start) for i, b in enumerate(boxes) if b]
    tall = [g for g in groups if g[3] >= FRAGMENT * height] or groups
    for frag in [g for g in groups if g not in tall]:
        overlap = [min(frag[2], g[2]) - max(frag[1], g[1]) for g in tall]
        best = int(np.argmax(overlap))
        if overlap[best] > 0 or -overlap[best] < height / 4:
            host = tall[best]
            tall[best] = (host[0] + frag[0], min(host[1], frag[1]), max(host[2], frag[2]), host[3])
        else:
            tall.append(frag)
    return [(g[0], g[1], g[2]) for g in tall]
