"""The number reader digitrec had before inference.numbers, kept here as the benchmark's baseline.

It split the ink into connected blobs, cut a blob much wider than tall at its emptiest columns (and
tried a few other cuts), and let the model pick the reading whose digits were on average most
probable. Copied from src/digitrec/pictures/segment.py and inference/recognizer.py as they were at
commit d3b89b5, unchanged but for imports; only bench/number_reading.py uses it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from digitrec.pictures.decode import ImageSource
from digitrec.pictures.preprocess import InkMap, Preprocessed, find_ink, render_digit

FRAGMENT = 0.6  # a blob shorter than this fraction of the line's height is a piece of a digit
DIGIT_ASPECT = 0.8  # a typical handwritten digit's width ÷ height
WIDE = 1.2  # a group wider than this × its height may hold more than one digit
NECK = 0.7  # ... and is cut only at a column with less ink than this × its typical column
MIN_WIDTH = 0.2  # no digit is narrower than this × its height (a "1" is about 0.25)


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
    suggests first, then (for a group that may be touching digits) other cuts, among which
    the recogniser may pick a more confident reading. Each column span is rendered once."""
    ink = find_ink(image, name)
    if ink.blank:
        return []
    out = []
    for whole, options in digit_options(ink):
        columns = np.arange(whole.shape[1])
        rendered = {span: render_digit(ink.only(whole & ((columns >= span[0]) & (columns < span[1]))[None, :]))
                    for span in {span for option in options for span in option}}
        out.append([[rendered[span] for span in option] for option in options])
    return out


Span = tuple[int, int]  # a digit's columns [start, stop) in the picture


def digit_options(ink: InkMap) -> list[tuple[np.ndarray, list[list[Span]]]]:
    """Per group, left to right: its ink (H, W bool) and its readings, each a list of column spans."""
    labels, n = ndi.label(ink.mask, structure=np.ones((3, 3)))
    boxes = ndi.find_objects(labels)
    groups = [Group([i + 1], b[0].start, b[0].stop, b[1].start, b[1].stop) for i, b in enumerate(boxes)]
    groups = sorted(merge_fragments(groups), key=lambda g: g.left)
    typical = int(np.median([g.height for g in groups])) if groups else 0  # a digit's height here
    out = []
    for group in groups:
        whole = np.isin(labels, group.ids)
        out.append((whole, split_options(whole, group, typical)))
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


def split_options(whole: np.ndarray, group: Group, typical: int) -> list[list[Span]]:
    """A group wider than WIDE × its height (or the typical digit's height, when it is a short
    wide digit) may be touching digits. First reading: about width ÷ (DIGIT_ASPECT × height)
    digits, cut at thin necks near evenly spaced points. Alternatives: every way to cut it
    into n-1..n+1 digits at the columns where the ink profile has its deepest minima."""
    height = max(group.height, typical)
    if group.width <= WIDE * height:
        return [[(group.left, group.right)]]
    n = max(2, round(group.width / (DIGIT_ASPECT * height)))
    ink_per_col = whole[group.top:group.bottom, group.left:group.right].sum(0)  # (w,)
    neck = NECK * float(np.median(ink_per_col[ink_per_col > 0]))
    options = [spans(group, even_cuts(ink_per_col, n, neck))]
    minima = profile_minima(ink_per_col, int(MIN_WIDTH * height))
    for count in range(max(1, n - 1), n + 2):
        for cuts in itertools.combinations(minima, count - 1):
            option = spans(group, list(cuts))
            if option not in options and min(b - a for a, b in option) >= MIN_WIDTH * height:
                options.append(option)
    return options


def spans(group: Group, cuts: list[int]) -> list[Span]:
    edges = [group.left] + [group.left + c for c in sorted(cuts)] + [group.right]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


def even_cuts(ink_per_col: np.ndarray, n: int, neck: float) -> list[int]:
    """Cut columns for `n` pieces: the least-inked column near each evenly spaced point,
    where it has no more ink than `neck`."""
    width = len(ink_per_col)
    step = width / n
    window = max(1, int(step * 0.3))
    cuts = []
    for k in range(1, n):
        centre = int(k * step)
        lo, hi = max(1, centre - window), min(width - 1, centre + window)
        distance = np.abs(np.arange(lo, hi) - centre)
        best = lo + int(np.lexsort((distance, ink_per_col[lo:hi]))[0])
        if ink_per_col[best] <= neck:
            cuts.append(best)
    return cuts


def profile_minima(ink_per_col: np.ndarray, margin: int, most: int = 6) -> list[int]:
    """Up to `most` columns (at least `margin` from either end) where the column ink is a local
    minimum over ±margin/2 columns, least ink first."""
    smooth = ndi.uniform_filter1d(ink_per_col.astype(float), 3)
    lowest = ndi.minimum_filter1d(smooth, max(3, margin | 1))
    columns = [c for c in range(margin, len(smooth) - margin) if smooth[c] <= lowest[c]]
    picked: list[int] = []
    for c in sorted(columns, key=lambda c: smooth[c]):  # one column per flat valley
        if all(abs(c - p) > 2 for p in picked):
            picked.append(c)
    return sorted(picked[:most])


def read(recognizer, image: ImageSource) -> str:
    """The old `Recognizer.read_number`: per group, the reading whose digits are on average most probable."""
    groups = segment_options(image)
    flat = [digit for options in groups for option in options for digit in option]
    answers = iter(recognizer.predict_inputs(flat))
    text = ""
    for options in groups:
        readings = [[next(answers) for _ in option] for option in options]
        text += "".join(str(p.digit) if p.digit is not None else "?" for p in best_reading(readings) if not p.blank)
    return text


def best_reading(options: list) -> list:
    def score(option: list) -> float:
        found = [p.probability for p in option if not p.blank]
        return float(np.mean(np.log(np.maximum(found, 1e-6)))) if found else -np.inf

    best = max(options, key=score)
    return best if score(best) > score(options[0]) else options[0]
