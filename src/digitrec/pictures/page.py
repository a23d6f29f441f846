"""A photographed page → the places where a number may be written, each cut out for the number reader.

Classical, step by step, at a bounded working size (the page's longer side at most PAGE_SIDE pixels,
whatever the photo's; boxes are mapped back to the picture's own pixels):

1. the paper's level is estimated under the ink (a grey closing at a coarse scale, so shadows and
   uneven light divide out) and ink is what is darker than it by INK;
2. the printed lines of the paper (ruled, squared, comb boxes, underlines) are found by morphology, as
   long thin runs of ink along the rows or the columns, and removed; where a digit's stroke crossed a
   line, the gap this leaves is closed again;
3. the remaining ink's 8-connected blobs are grouped into candidates: blobs side by side on a line, at
   most GAP × the handwriting's height apart, are one candidate (a number, or a word, or a mark);
4. each candidate is cut out with only its own ink, dark on white, for `Recognizer.read_number`, whose
   not-a-digit answer decides whether it is a number (inference.pages).

The settings were tuned on pages of validation digits (docs/pages.md). At most MAX_CANDIDATES are read,
the most digit-like first, so a page of text costs a bounded time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from digitrec.pictures.decode import ImageSource, describe, open_sized, to_gray

PAGE_SIDE = 1600  # the page is read with its longer side at most this many pixels
INK = 0.28  # ink is at least this much darker than the paper around it (a share of the paper's brightness)
LINE = 0.07  # a printed line runs at least this share of the working page's width
COLUMN = 1.15  # a printed column line runs at least this × the handwriting's height
GAP = 0.75  # blobs at most this × the handwriting's height apart (on a line) are one candidate
MIN_HEIGHT = 0.6  # candidates shorter than this × the handwriting's height are dots and dashes
MAX_HEIGHT = 2.5  # taller candidates are drawings, margins, the table the page lies on
MAX_BLOBS = 2000  # more blobs than this: only the largest are grouped
MAX_CANDIDATES = 32  # more candidates than this: only the most digit-like are read (each costs a number read)
SMALLEST = 12  # candidates shorter than this many working pixels are too small to read (print, dots)
THIN = 0.08  # blobs narrower than this × their height are pieces of printed column lines
DARKER = 0.25  # handwriting is at least this much darker than the printed lines' typical ink
MEND = 7  # a line's pixels with ink on both sides within this many are a stroke crossing it
CROSS = 7  # ink runs across a line at least this long (pixels) are handwriting, not the line
MARGIN = 6  # blank pixels around a cut-out candidate


@dataclass
class Candidate:
    """A place on the page that may hold a number."""

    picture: np.ndarray  # (h, w) uint8: its ink alone, dark on white, at the working scale
    x: int  # the cut-out's top-left corner in working pixels
    y: int
    box: tuple[int, int, int, int]  # x, y, width, height of its ink in the picture's own pixels
    scale: float  # the picture's pixels per working pixel


@dataclass
class PageInk:
    """A page's ink with its printed lines removed, at the working scale."""

    ink: np.ndarray  # (H, W) float32 in [0, 1], bright = ink
    mask: np.ndarray  # (H, W) bool: handwriting (lines removed)
    width: int  # the picture's own size
    height: int
    scale: float  # the picture's pixels per working pixel
    writing: float  # the handwriting's typical height in working pixels (0 when there is none)


def page_ink(image: ImageSource, name: str | None = None) -> PageInk:
    """Open the page (EXIF rotation applied, pixel cap enforced) and find its ink without the paper's lines."""
    name = name or describe(image)
    img, (width, height) = open_sized(image, name, draft=PAGE_SIDE)
    gray = to_gray(img, max_side=PAGE_SIDE)
    ink = darker_than_paper(gray)
    mask, writing = remove_lines(ink, max(15, int(LINE * max(gray.shape))))
    return PageInk(ink, mask, width, height, width / gray.shape[1], writing)


def darker_than_paper(gray: np.ndarray) -> np.ndarray:
    """(H, W) grey in [0, 1] → how much darker than the paper around it each pixel is, as a share of the
    paper's brightness (1 = black): the paper's level is a grey closing of the page shrunk 8 times (wider
    than any stroke), blurred, and scaled back, so light falling off across the page divides out."""
    h, w = gray.shape
    k = 8
    small = np.asarray(Image.fromarray(gray).resize((max(1, w // k), max(1, h // k)), Image.Resampling.BOX))
    paper = ndi.gaussian_filter(ndi.grey_closing(small, size=(7, 7), mode="nearest"), 1.5, mode="nearest")
    paper = np.asarray(Image.fromarray(paper.astype(np.float32)).resize((w, h), Image.Resampling.BILINEAR))
    return np.clip(1 - gray / np.maximum(paper, 0.05), 0, 1).astype(np.float32)


def _open(mask: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Binary opening along one axis by a line of `length` pixels (runs shorter than that vanish)."""
    m = mask.view(np.uint8)
    return ndi.maximum_filter1d(ndi.minimum_filter1d(m, length, axis=axis), length, axis=axis).astype(bool)


def printed_lines(mask: np.ndarray, length: int, axis: int) -> np.ndarray:
    """The ink of long straight runs along `axis` (1: rows, 0: columns), one pixel grown across. The mask is
    thickened across the run by 2 pixels each side first, so a line tilted a few degrees still runs `length`
    unbroken."""
    across = 1 - axis
    thick = ndi.maximum_filter1d(mask.view(np.uint8), 5, axis=across).astype(bool)
    runs = _open(thick, length, axis) & mask
    return ndi.maximum_filter1d(runs.view(np.uint8), 3, axis=across).astype(bool)


def remove_lines(ink: np.ndarray, length: int) -> tuple[np.ndarray, float]:
    """The ink (above INK) without printed lines, and the handwriting's height. Lines are looked for in
    fainter ink (above INK / 2): a thin line photographed breaks into dashes at INK. Rows and long columns go
    first, `length` long; then, with the handwriting's height known from what is left, columns at least
    COLUMN × that long (a comb's sides are taller than its digits, a 1 is not)."""
    mask, faint = ink > INK, ink > INK / 2
    mask = _without(mask, ink, printed_lines(faint, length, 1), 1)
    mask = _without(mask, ink, printed_lines(faint, length, 0), 0)  # long columns: a grid, a margin
    writing = handwriting_height(blobs(mask)[1])
    return _without(mask, ink, printed_lines(faint, max(15, int(COLUMN * writing)), 0), 0), writing


def _without(mask: np.ndarray, ink: np.ndarray, lines: np.ndarray, axis: int) -> np.ndarray:
    """The mask without the lines along `axis`. A line's pixel stays where it is much darker than the
    printed lines are (by DARKER: handwriting over a grey line), where the ink runs across it for at least
    CROSS pixels (a stroke crossing the line, or lying along it, is thicker than the line), and where ink
    lies on both sides of it within MEND pixels (a thin stroke crossing it)."""
    across = 1 - axis
    own = lines & (ink > INK / 2)  # the line's own pixels (most of them are the line's, not handwriting's)
    if not own.any():
        return mask
    level = float(np.median(ink[own]))
    gone = lines & mask & ~_open(mask, CROSS, across) & (ink < level + DARKER)
    left = mask & ~gone
    m = left.view(np.uint8)
    closed = ndi.minimum_filter1d(ndi.maximum_filter1d(m, MEND, axis=across), MEND, axis=across).astype(bool)
    return left | (gone & closed)


@dataclass
class _Blob:
    top: int
    left: int
    bottom: int
    right: int
    area: int


def blobs(mask: np.ndarray) -> tuple[np.ndarray, list[_Blob]]:
    """8-connected blobs of ink (specks of a few pixels left out), at most MAX_BLOBS, the largest kept."""
    labels, n = ndi.label(mask, structure=np.ones((3, 3)))
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    out = []
    for i, sl in enumerate(ndi.find_objects(labels), 1):
        if sl is not None and areas[i] >= 12:
            out.append((i, _Blob(sl[0].start, sl[1].start, sl[0].stop, sl[1].stop, int(areas[i]))))
    out = sorted(out, key=lambda b: -b[1].area)[:MAX_BLOBS]
    return labels, [b for _, b in out], [i for i, _ in out]


def handwriting_height(found: list[_Blob]) -> float:
    """The typical height of a digit or letter on the page: the median height of the larger blobs (the sides
    of comb boxes, upright and thin, left out)."""
    found = [b for b in found if not _upright_line(b)]
    heights = np.array([b.bottom - b.top for b in found], float)
    if not len(heights):
        return 0.0
    areas = np.array([b.area for b in found], float)
    return float(np.median(heights[areas >= 0.25 * np.percentile(areas, 90)]))


def _upright_line(blob: _Blob) -> bool:
    """Thinner than THIN × its height: a printed line's piece (a 1 is thicker)."""
    return blob.right - blob.left <= THIN * (blob.bottom - blob.top)


def group(found: list[_Blob], height: float) -> list[list[int]]:
    """Blobs on one line at most GAP × height apart (or a piece above or below another) → one group each."""
    n = len(found)
    if not n:
        return []
    t = np.array([b.top for b in found])
    b_ = np.array([b.bottom for b in found])
    lf = np.array([b.left for b in found])
    r = np.array([b.right for b in found])
    h = b_ - t
    v_overlap = np.minimum(b_[:, None], b_[None]) - np.maximum(t[:, None], t[None])
    h_gap = np.maximum(lf[:, None], lf[None]) - np.minimum(r[:, None], r[None])
    tall = h >= 0.35 * height  # dots and dashes join only what they lie above or below
    side = ((v_overlap >= 0.3 * np.minimum(h[:, None], h[None])) & (h_gap <= GAP * height)
            & tall[:, None] & tall[None])
    stacked = (h_gap < 0) & (v_overlap > -0.3 * height)  # a detached bar or stem above or below
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(side | stacked, 1))):
        parent[root(int(i))] = root(int(j))
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _may_write(blob: _Blob, height: float, h: int, w: int) -> bool:
    """Whether a blob may be (part of) handwriting: not taller than MAX_HEIGHT × the handwriting, not a
    stroke along the line (an underline: long and flat), not a piece of a column line, not touching the
    picture's edge (the table around the page)."""
    bh, bw = blob.bottom - blob.top, blob.right - blob.left
    return (bh <= MAX_HEIGHT * height and not (bw >= 1.5 * height and bh <= 0.35 * height)
            and not _upright_line(blob) and blob.top > 0 and blob.left > 0 and blob.bottom < h and blob.right < w)


def candidates(page: PageInk) -> list[Candidate]:
    """The page's candidates (see the module's docstring), at most MAX_CANDIDATES, in no set order."""
    labels, found, ids = blobs(page.mask)
    height = page.writing
    h, w = page.mask.shape
    keep = [i for i, b in enumerate(found) if _may_write(b, height, h, w)]
    found, ids = [found[i] for i in keep], [ids[i] for i in keep]
    boxes = []
    for members in group(found, height):
        top, left = min(found[i].top for i in members), min(found[i].left for i in members)
        bottom, right = max(found[i].bottom for i in members), max(found[i].right for i in members)
        if max(MIN_HEIGHT * height, SMALLEST) <= bottom - top <= MAX_HEIGHT * height:
            boxes.append((abs(np.log((bottom - top) / height)), top, left, bottom, right, [ids[i] for i in members]))
    boxes.sort(key=lambda b: b[0])  # the most digit-like (as tall as the handwriting) first
    return [_cut(page, labels, *b[1:]) for b in boxes[:MAX_CANDIDATES]]


def _cut(page: PageInk, labels: np.ndarray, top: int, left: int, bottom: int, right: int,
         members: list[int]) -> Candidate:
    h, w = page.mask.shape
    y0, x0 = max(0, top - MARGIN), max(0, left - MARGIN)
    y1, x1 = min(h, bottom + MARGIN), min(w, right + MARGIN)
    own = np.isin(labels[y0:y1, x0:x1], members)
    ink = page.ink[y0:y1, x0:x1]
    edges = ndi.binary_dilation(own, iterations=2) & (ink <= INK)  # its soft edges, not a line's ink beside it
    ink = np.where(own, np.maximum(ink, 0.5), np.where(edges, ink, 0.0))
    picture = (255 - np.clip(ink * 1.6, 0, 1) * 255 + 0.5).astype(np.uint8)
    s = page.scale
    box = (int(left * s), int(top * s), int(np.ceil((right - left) * s)), int(np.ceil((bottom - top) * s)))
    return Candidate(picture, x0, y0, box, s)
