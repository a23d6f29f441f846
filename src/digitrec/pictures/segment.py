"""A picture of a number (one line, such as "2026") → the ways its ink may be cut into digits.

Splitting ink into connected blobs cannot read "2026" written in one stroke, so nothing here
decides where one digit ends. The ink is found once for the whole line (`preprocess.find_ink`,
at a scale set by the line's height); its 8-connected blobs are grouped (a fragment such as the
detached bar of a 5 joins the digit it lies over); a group too wide to be one digit is cut at the
columns where the ink is thinnest (projection valleys), into pieces ("atoms"). A candidate digit
is any run of up to `MAX_ATOMS` neighbouring atoms no wider than `MAX_ASPECT` × the line's
height, rendered as `preprocess` renders a single digit. `inference.numbers` lets the digit
model score every candidate and picks the best cut sequence by dynamic programming.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from digitrec.errors import DigitrecError
from digitrec.pictures.decode import ImageSource, describe, open_image, to_gray
from digitrec.pictures.preprocess import InkMap, ink_map, render_digit

FRAGMENT = 0.6  # a blob shorter than this fraction of the line's height is a piece of a digit
WIDE = 1.0  # a group wider than this × the line's height may hold more than one digit
MIN_PIECE = 0.12  # cuts at least this × the height apart (and from a group's ends)
CUTS_PER_DIGIT = 2.5  # at most this many cut candidates per digit a wide group may hold
MAX_ATOMS = 4  # a candidate digit joins at most this many atoms
MAX_ASPECT = 1.3  # … and is at most this × the height wide
MAX_GAP = 0.08  # … and has no empty gap wider than this × the height between its atoms
MAX_DIGITS = 20  # longer numbers are refused rather than read slowly
MAX_WIDTH = 20_000  # pixels; wider pictures are refused before decoding
LINE_HEIGHT = 96  # the line is read at this height (pixels): digits are shrunk or grown to it
SPECK = 0.08  # an atom with less ink than this × a typical digit's is noise, never a digit alone


@dataclass
class Atom:
    """A piece of ink: one group, or a part of a wide group between two cut columns."""

    mask: np.ndarray  # (H, W) bool at the working scale, the whole line's size
    left: int
    right: int  # columns [left, right)
    ink: int  # pixels


@dataclass
class Candidate:
    """A run of atoms [first, last] that may be one digit, rendered for the model."""

    first: int
    last: int
    image: np.ndarray  # (28, 28) uint8, as `preprocess` renders a digit
    box: tuple[int, int, int, int]  # x, y, width, height in the original picture's pixels


@dataclass
class Lattice:
    """Everything a number reader needs: the atoms left to right and every candidate digit."""

    atoms: list[Atom]
    candidates: list[Candidate] = field(default_factory=list)
    blank: bool = False
    source: str = ""


def lattice(image: ImageSource, name: str | None = None) -> Lattice:
    """The candidate digits of a one-line picture of a number (see the module's docstring)."""
    name = name or describe(image)
    ink, scale = line_ink(image, name)
    if ink.blank:
        return Lattice([], [], True, name)
    height = _line_height(ink.mask)
    if _rough_count(ink.mask, height) > 1.5 * MAX_DIGITS:  # before the work grows with it
        raise too_many_digits(name)
    atoms = [a for a in _atoms(ink.mask, height) if a.ink > 0]
    out = Lattice(atoms, [], False, name)
    typical = max(a.ink for a in atoms)
    for first in range(len(atoms)):
        for last in range(first, min(first + MAX_ATOMS, len(atoms))):
            run = atoms[first:last + 1]
            if max(a.right for a in run) - min(a.left for a in run) > MAX_ASPECT * height:
                break
            if _widest_gap(run) > MAX_GAP * height:  # digits standing apart are never one digit
                break
            if sum(a.ink for a in run) < SPECK * typical:
                continue
            out.candidates.append(_render(ink, run, first, last, scale))
    return out


def line_ink(image: ImageSource, name: str) -> tuple[InkMap, float]:
    """The line's ink, read at LINE_HEIGHT pixels of height (and the original pixels per working pixel)."""
    img = open_image(image, name)
    if img.width > MAX_WIDTH:
        raise DigitrecError(f"{name}: picture is {img.width:,} pixels wide; a number may be at most "
                            f"{MAX_WIDTH:,} wide")
    gray = to_gray(img, max_height=LINE_HEIGHT, max_side=MAX_WIDTH)
    return ink_map(gray, name), img.height / gray.shape[0]


def _line_height(mask: np.ndarray) -> int:
    rows = np.flatnonzero(mask.any(1))
    return int(rows[-1] - rows[0] + 1)


def _widest_gap(run: list[Atom]) -> int:
    """The widest run of empty columns between the atoms' column ranges."""
    spans = sorted((a.left, a.right) for a in run)
    reach, widest = spans[0][1], 0
    for left, right in spans[1:]:
        widest = max(widest, left - reach)
        reach = max(reach, right)
    return widest


def _rough_count(mask: np.ndarray, height: int) -> float:
    """About how many digits the ink holds: its blobs, or its inked columns over a digit's width."""
    _, blobs = ndi.label(mask, structure=np.ones((3, 3)))
    return max(blobs / 2, int(mask.any(0).sum()) / (0.75 * height))


def too_many_digits(name: str) -> DigitrecError:
    return DigitrecError(f"{name}: holds more than {MAX_DIGITS} digits; a number is read {MAX_DIGITS} digits "
                         "at a time at most")


def _atoms(mask: np.ndarray, height: int) -> list[Atom]:
    """Groups of blobs, the wide ones cut at their thinnest columns; left to right."""
    labels, _ = ndi.label(mask, structure=np.ones((3, 3)))
    groups = merge_fragments(labels, ndi.find_objects(labels), height)
    atoms: list[Atom] = []
    for ids in sorted(groups, key=lambda g: g[1]):
        whole = np.isin(labels, ids[0])
        left, right = ids[1], ids[2]
        cuts = [left] + (valleys(whole[:, left:right].sum(0), height) + left).tolist() + [right] \
            if right - left > WIDE * height else [left, right]
        for a, b in zip(cuts, cuts[1:]):
            part = whole.copy()
            part[:, :a] = False
            part[:, b:] = False
            atoms.append(Atom(part, a, b, int(part.sum())))
    return sorted(atoms, key=lambda a: (a.left + a.right) / 2)


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


def valleys(ink_per_col: np.ndarray, height: int) -> np.ndarray:
    """Candidate cut columns of a wide group: local minima of its smoothed column profile, at least
    MIN_PIECE × the height apart and from the ends, thinnest first, at most CUTS_PER_DIGIT per digit."""
    margin = max(2, int(MIN_PIECE * height))
    smooth = ndi.uniform_filter1d(ink_per_col.astype(float), 3)
    lowest = ndi.minimum_filter1d(smooth, max(3, margin | 1))
    columns = [c for c in range(margin, len(smooth) - margin) if smooth[c] <= lowest[c]]
    most = max(1, int(CUTS_PER_DIGIT * len(smooth) / (0.6 * height)))
    picked: list[int] = []
    for c in sorted(columns, key=lambda c: (smooth[c], c)):
        if all(abs(c - p) >= margin for p in picked):
            picked.append(c)
        if len(picked) >= most:
            break
    return np.array(sorted(picked), dtype=int)


def _render(ink: InkMap, run: list[Atom], first: int, last: int, scale: float) -> Candidate:
    keep = np.logical_or.reduce([a.mask for a in run])
    rows, cols = np.flatnonzero(keep.any(1)), np.flatnonzero(keep.any(0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = InkMap(np.where(keep, ink.ink, 0)[top:bottom, left:right].astype(np.float32),
                  keep[top:bottom, left:right], ink.threshold, ink.inverted, False, ink.source)
    box = (int(left * scale), int(top * scale), int(np.ceil((right - left) * scale)),
           int(np.ceil((bottom - top) * scale)))
    return Candidate(first, last, render_digit(crop).image, box)
