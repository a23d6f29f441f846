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
OVERLAP = 0.5  # a fragment overlapping a digit's columns by this fraction of its width joins it
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
    ink = find_ink(image, name)
    if ink.blank:
        return []
    return [render_digit(ink.only(keep)) for keep in digit_masks(ink)]


def digit_masks(ink: InkMap) -> list[np.ndarray]:
    """(H, W) bool masks, one per digit, ordered left to right."""
    labels, n = ndi.label(ink.mask, structure=np.ones((3, 3)))
    boxes = ndi.find_objects(labels)
    groups = [Group([i + 1], b[0].start, b[0].stop, b[1].start, b[1].stop) for i, b in enumerate(boxes)]
    groups = merge_fragments(groups)
    masks = []
    for group in sorted(groups, key=lambda g: g.left):
        whole = np.isin(labels, group.ids)
        masks.extend(whole & cols for cols in split_wide(whole, group))
    return masks


def merge_fragments(groups: list[Group]) -> list[Group]:
    """Join each short blob to the digit whose columns it overlaps most, or else the nearest one."""
    if len(groups) < 2:
        return groups
    line = max(g.bottom for g in groups) - min(g.top for g in groups)
    changed = True
    while changed and len(groups) > 1:
        changed = False
        for frag in sorted(groups, key=lambda g: (g.height, g.width)):
            if frag.height >= FRAGMENT * line:
                break
            host = _host(frag, [g for g in groups if g is not frag])
            if host is not None:
                groups = [g for g in groups if g is not frag and g is not host] + [host.join(frag)]
                changed = True
                break
    return groups


def _host(frag: Group, others: list[Group]) -> Group | None:
    """The group `frag` belongs to: most column overlap, else the nearest if it is close."""
    def overlap(g: Group) -> int:
        return min(frag.right, g.right) - max(frag.left, g.left)

    best = max(others, key=overlap)
    if overlap(best) >= OVERLAP * min(frag.width, best.width):
        return best
    nearest = min(others, key=lambda g: -overlap(g))  # smallest gap
    tiny = frag.height < 0.3 * max(g.height for g in others)
    return nearest if tiny and -overlap(nearest) < frag.height else None


def split_wide(whole: np.ndarray, group: Group) -> list[np.ndarray]:
    """Column ranges (as (1, W) bool rows) that cut a too-wide group into digits, at the column
    with least ink near each evenly spaced cut point, where that column is a thin neck (two
    digits touching) rather than the middle of one wide digit."""
    width = whole.shape[1]
    if group.width <= WIDE * group.height:
        return [np.ones((1, width), bool)]
    n = max(2, round(group.width / (DIGIT_ASPECT * group.height)))
    ink_per_col = whole[group.top:group.bottom, group.left:group.right].sum(0)  # (w,)
    neck = NECK * float(np.median(ink_per_col[ink_per_col > 0]))
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
