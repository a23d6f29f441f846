"""A picture of a number (one line, such as "2026") → one MNIST-style input per digit, left to right.

The ink is found once for the whole picture (`preprocess.find_ink`); its
8-connected blobs are grouped into digits — a fragment (the detached bar of
a 5, the broken stem of a 4) joins the digit it lies over or beside — and a
group much wider than tall is cut at the emptiest columns, which separates
digits that touch. Each digit's ink is then rendered by `preprocess.render_digit`,
exactly as a single-digit picture would be.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .imageio import ImageSource
from .preprocess import InkMap, Preprocessed, find_ink, render_digit

FRAGMENT = 0.6  # a blob shorter than this fraction of the line's height is a piece of a digit
DIGIT_ASPECT = 0.8  # a typical handwritten digit's width ÷ height
WIDE = 1.2  # a group wider than this × its height may hold more than one digit
NECK = 0.7  # ... and is cut only at a column with less ink than this × its typical column


@dataclass
class Group:
    """Ink blobs believed to be one digit, with their bounding box (pixels, end exclusive)."""

    ids: list[int]
    top: int
    bottom: int
    left: int
    right: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def join(self, other: "Group") -> "Group":
        return Group(self.ids + other.ids, min(self.top, other.top), max(self.bottom, other.bottom),
                     min(self.left, other.left), max(self.right, other.right))


def segment(image: ImageSource, name: str | None = None) -> list[Preprocessed]:
    """Every digit in a one-line picture, left to right, each as `preprocess` would give it."""
    return [digit for options in segment_options(image, name) for digit in options[0]]


def segment_options(image: ImageSource, name: str | None = None) -> list[list[list[Preprocessed]]]:
    """For each group of ink, left to right, the ways to read it as digits: the one its shape
    suggests first, then (for a group that may be touching digits) cuts into other counts,
    among which the recogniser may pick a clearly more confident reading."""
    ink = find_ink(image, name)
    if ink.blank:
        return []
    return [[[render_digit(ink.only(keep)) for keep in masks] for masks in options] for options in digit_options(ink)]


def digit_options(ink: InkMap) -> list[list[list[np.ndarray]]]:
    """Per group, left to right: options, each a list of (H, W) bool masks (one per digit)."""
    labels, n = ndi.label(ink.mask, structure=np.ones((3, 3)))
    boxes = ndi.find_objects(labels)
    groups = [Group([i + 1], b[0].start, b[0].stop, b[1].start, b[1].stop) for i, b in enumerate(boxes)]
    groups = sorted(merge_fragments(groups), key=lambda g: g.left)
    typical = int(np.median([g.height for g in groups])) if groups else 0  # a digit's height here
    out = []
    for group in groups:
        whole = np.isin(labels, group.ids)
        out.append([[whole & cols for cols in cuts] for cuts in split_options(whole, group, typical)])
    return out


def merge_fragments(groups: list[Group]) -> list[Group]:
    """Join each short blob (a piece of a digit: MNIST's digits are all nearly as tall as the
    line) to the digit whose columns it overlaps most, or else the nearest close one."""
    if len(groups) < 2:
        return groups
    line = max(g.bottom for g in groups) - min(g.top for g in groups)
    changed = True
    while changed and len(groups) > 1:
        changed = False
        for frag in sorted(groups, key=lambda g: (g.height, g.width)):
            if frag.height >= FRAGMENT * line:
                break
            host = _host(frag, [g for g in groups if g is not frag], line)
            if host is not None:
                groups = [g for g in groups if g is not frag and g is not host] + [host.join(frag)]
                changed = True
                break
    return groups


def _host(frag: Group, others: list[Group], line: int) -> Group | None:
    """The group a fragment belongs to: the one whose columns it overlaps most, else the
    nearest one if the gap is under a third of the line's height; None keeps it apart."""
    def overlap(g: Group) -> int:  # columns shared; negative: the gap between them
        return min(frag.right, g.right) - max(frag.left, g.left)

    best = max(others, key=overlap)
    return best if overlap(best) > 0 or -overlap(best) < line / 3 else None


def split_options(whole: np.ndarray, group: Group, typical: int) -> list[list[np.ndarray]]:
    """Column ranges ((1, W) bool rows) per option. A group wider than WIDE × its height (or the
    typical digit's height, when it is a short wide digit) is cut into about
    width ÷ (DIGIT_ASPECT × height) digits at the thinnest columns, where they are
    thin necks (digits touching) rather than the middle of one wide digit; the alternatives
    cut it into one digit fewer or more wherever ink is least, necks or not."""
    height = max(group.height, typical)
    if group.width <= WIDE * height:
        return [[np.ones((1, whole.shape[1]), bool)]]
    n = max(2, round(group.width / (DIGIT_ASPECT * height)))
    ink_per_col = whole[group.top:group.bottom, group.left:group.right].sum(0)  # (w,)
    neck = NECK * float(np.median(ink_per_col[ink_per_col > 0]))
    options = [cut(whole.shape[1], group, ink_per_col, n, neck)]
    for count in (n - 1, n, n + 1):
        option = cut(whole.shape[1], group, ink_per_col, count, np.inf)
        if len(option) not in [len(o) for o in options]:
            options.append(option)
    return options


def cut(width: int, group: Group, ink_per_col: np.ndarray, n: int, neck: float) -> list[np.ndarray]:
    """Cut the group into up to `n` column ranges, at the least-inked column near each evenly
    spaced point, skipping points where that column has more ink than `neck`."""
    step = group.width / n
    window = max(1, int(step * 0.3))
    cuts = [group.left]
    for k in range(1, n):
        centre = int(k * step)
        lo, hi = max(1, centre - window), min(group.width - 1, centre + window)
        distance = np.abs(np.arange(lo, hi) - centre)
        best = lo + int(np.lexsort((distance, ink_per_col[lo:hi]))[0])
        if ink_per_col[best] <= neck:
            cuts.append(group.left + best)
    cuts.append(group.right)
    columns = np.arange(width)
    return [((columns >= a) & (columns < b))[None, :] for a, b in zip(cuts, cuts[1:]) if b > a]
