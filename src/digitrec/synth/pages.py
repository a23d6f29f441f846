"""Made-up photographed pages: handwritten numbers from MNIST digits among the marks that are not numbers.

A page is 1,400×1,000 pixels of paper of one kind:

- plain: white paper;
- ruled: printed lines the numbers sit on, and a margin line;
- squared: a printed grid;
- comb: a form of comb boxes (a row of printed boxes, one digit in each, its ink touching or crossing
  the lines), some left empty, with printed labels;
- photo: any of the four photographed: blue or dark ink, uneven light and a shadow, a slant of a few
  degrees (perspective), noise, JPEG.

Rows of the page hold numbers (1-6 MNIST digits, apart or touching, sometimes underlined) and marks that
are not numbers: handwritten words (letters from `synth.nondigits`), printed labels, ticks and crosses,
signatures (scribbles). The truth is each number's text and its box (the ink of its digits, in the
page's pixels, through the slant too). Pages from training, validation and test digits are drawn the
same way; docs/pages.md says how the benchmark's sets are rebuilt.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digitrec.synth.lines import ink_columns, light_ramp
from digitrec.synth.nondigits import TRAIN_FAMILIES, font_dir, letter, scribble

KINDS = ("plain", "ruled", "squared", "comb", "photo")
PAPERS = KINDS[:4]
SIZE = (1400, 1000)  # width, height
LABELS = ["Name", "Total", "Date", "Score", "Week", "Room", "Ref", "Amount", "Meter", "Sheet", "Signed", "Check"]
DARK, BLUE = (0.08, 0.08, 0.1), (0.1, 0.15, 0.55)


@dataclass
class Written:
    """One number written on the page: its text and its box (x, y, width, height) in the page's pixels."""

    text: str
    box: tuple[int, int, int, int]


@dataclass
class Page:
    picture: Image.Image | bytes  # RGB picture, or JPEG bytes for a photo
    kind: str
    numbers: list[Written]  # top to bottom, then left to right


class _Sheet:
    """The page being drawn: handwriting and print as ink coverage (H, W) in [0, 1], and the truth."""

    def __init__(self, rng: np.random.Generator, size: tuple[int, int] = SIZE) -> None:
        self.w, self.h = size
        self.ink = np.zeros((self.h, self.w), np.float32)
        self.print = Image.new("L", size, 0)
        self.draw = ImageDraw.Draw(self.print)
        self.rng = rng
        self.numbers: list[Written] = []
        self.height = int(rng.integers(36, 64))  # this hand's digit height in pixels

    def put(self, ink: np.ndarray, x: int, y: int) -> None:
        h, w = ink.shape
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, self.w), min(y + h, self.h)
        if x1 > x0 and y1 > y0:
            part = self.ink[y0:y1, x0:x1]
            np.maximum(part, ink[y0 - y:y1 - y, x0 - x:x1 - x], out=part)


def scaled(ink: np.ndarray, height: float) -> np.ndarray:
    """Float ink (h, w) resized so that it is `height` pixels tall (aspect kept)."""
    h, w = ink.shape
    size = (max(1, round(w * height / h)), max(1, round(height)))
    return np.asarray(Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.BICUBIC)).clip(0, 1)


def _ink_box(ink: np.ndarray, x: int, y: int) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero((ink > 0.3).any(1)), np.flatnonzero((ink > 0.3).any(0))
    return x + int(cols[0]), y + int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def _union(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    return x0, y0, x1 - x0, y1 - y0


def write_number(sheet: _Sheet, digits: list[np.ndarray], text: str, x: int, base: int) -> int:
    """Digits (28×28 uint8) side by side from x, their 28-pixel boxes ending at row `base`; returns the
    right end. Neighbours are apart (2-8 MNIST pixels) or, one time in five, touching."""
    scale = sheet.height / 20  # an MNIST digit's ink is about 20 of its 28 rows
    touching = sheet.rng.random() < 0.2
    boxes = []
    for d in digits:
        piece = scaled(ink_columns(d).astype(np.float32) / 255, 28 * scale)
        y = base - piece.shape[0] + int(sheet.rng.integers(-2, 3) * scale / 2)
        sheet.put(piece, x, y)
        boxes.append(_ink_box(piece, x, y))
        gap = -int(sheet.rng.integers(1, 3)) if touching else int(sheet.rng.integers(2, 9))
        x += piece.shape[1] + int(gap * scale)
    sheet.numbers.append(Written(text, _union(boxes)))
    if sheet.rng.random() < 0.15:  # an underline a little below the number
        box = sheet.numbers[-1].box
        y = box[1] + box[3] + int(sheet.rng.integers(4, 12))
        _stroke(sheet, [(box[0] - 8, y), (box[0] + box[2] + 10, y + int(sheet.rng.integers(-4, 5)))])
    return x


def _stroke(sheet: _Sheet, points: list[tuple[float, float]]) -> None:
    """A pen stroke through `points`, as wide as the hand's digit strokes."""
    img = Image.new("L", (sheet.w, sheet.h), 0)
    ImageDraw.Draw(img).line(points, fill=255, width=max(2, sheet.height // 9), joint="curve")
    np.maximum(sheet.ink, np.asarray(img, np.float32) / 255, out=sheet.ink)


def write_word(sheet: _Sheet, x: int, base: int) -> int:
    """3-7 handwritten letters (nondigits.letter, the training fonts): a word, not a number."""
    pieces = [ink_columns((letter(sheet.rng, TRAIN_FAMILIES) * 255).astype(np.uint8)) for _ in
              range(int(sheet.rng.integers(3, 8)))]
    for piece in pieces:
        if not piece.any():
            continue
        ink = scaled(piece.astype(np.float32) / 255, sheet.height * 1.6)
        sheet.put(ink, x, base - ink.shape[0] + int(sheet.height * 0.3))
        x += ink.shape[1] - int(sheet.height * 0.1)
    return x


def write_mark(sheet: _Sheet, x: int, base: int) -> int:
    """A tick, a cross or a signature."""
    h, rng = sheet.height, sheet.rng
    kind = rng.integers(3)
    if kind == 0:
        _stroke(sheet, [(x, base - h * 0.4), (x + h * 0.3, base), (x + h * 0.9, base - h * 1.1)])
        return x + h
    if kind == 1:
        _stroke(sheet, [(x, base - h), (x + h * 0.8, base)])
        _stroke(sheet, [(x + h * 0.8, base - h), (x, base)])
        return x + h
    ink = scaled(scribble(rng), h * 1.4)
    ink = np.asarray(Image.fromarray(ink).resize((ink.shape[1] * 3, ink.shape[0]), Image.Resampling.BILINEAR))
    sheet.put(ink, x, base - ink.shape[0] + h // 4)
    return x + ink.shape[1]


def write_label(sheet: _Sheet, x: int, base: int) -> int:
    """A printed label such as "Total:"."""
    font = ImageFont.truetype(str(font_dir() / "DejaVuSans.ttf"), int(sheet.height * 0.55))
    text = LABELS[int(sheet.rng.integers(len(LABELS)))] + ":"
    sheet.draw.text((x, base), text, fill=235, font=font, anchor="ls")
    return x + int(sheet.draw.textlength(text, font=font))


def _pick(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, n: int) -> tuple[list, str]:
    picks = rng.choice(len(images), size=n, replace=False)
    return [images[i] for i in picks], "".join(str(int(labels[i])) for i in picks)


def _length(rng: np.random.Generator) -> int:
    return int(rng.choice([1, 2, 3, 4, 5, 6], p=[0.1, 0.2, 0.25, 0.2, 0.15, 0.1]))


def fill_rows(sheet: _Sheet, bases: list[int], images: np.ndarray, labels: np.ndarray, numbers: bool = True) -> None:
    """Rows of numbers and marks along the given baselines (about half the rows are used); only marks
    when not `numbers`."""
    rng, h = sheet.rng, sheet.height
    odds = [0.55, 0.2, 0.1, 0.15] if numbers else [0.0, 0.45, 0.2, 0.35]
    for base in bases:
        if rng.random() < 0.45:
            continue
        x = int(rng.integers(60, 200))
        for _ in range(int(rng.integers(1, 4))):
            what = rng.choice(4, p=odds)
            if what == 0:
                digits, text = _pick(images, labels, rng, _length(rng))
                if x + len(digits) * h * 1.2 > sheet.w - 40:
                    break
                x = write_number(sheet, digits, text, x, base)
            elif x + 8 * h > sheet.w - 40:
                break
            else:
                x = [write_word, write_mark, write_label][what - 1](sheet, x, base)
            x += int(rng.uniform(1.5, 4) * h)


def comb_form(sheet: _Sheet, images: np.ndarray, labels: np.ndarray, numbers: bool = True) -> None:
    """Rows of a printed label and a comb (one box per digit); some combs left empty."""
    rng, h = sheet.rng, sheet.height
    box_w, box_h = int(h * rng.uniform(1.0, 1.25)), int(h * rng.uniform(1.3, 1.6))
    y = int(rng.integers(50, 90))
    while y + box_h < sheet.h - 40:
        label_end = write_label(sheet, 60, y + box_h - box_h // 4)
        x0, n = max(label_end + 30, 260), int(rng.integers(3, 9))
        for k in range(n + 1):
            sheet.draw.line([(x0 + k * box_w, y), (x0 + k * box_w, y + box_h)], fill=200, width=2)
        sheet.draw.line([(x0, y), (x0 + n * box_w, y)], fill=200, width=2)
        sheet.draw.line([(x0, y + box_h), (x0 + n * box_w, y + box_h)], fill=200, width=2)
        if numbers and rng.random() < 0.8:
            digits, text = _pick(images, labels, rng, int(rng.integers(1, n + 1)))
            boxes = []
            for k, d in enumerate(digits):
                piece = scaled(ink_columns(d).astype(np.float32) / 255, 28 * h / 20)
                px = x0 + k * box_w + (box_w - piece.shape[1]) // 2 + int(rng.integers(-4, 5))
                py = y + (box_h - piece.shape[0]) // 2 + int(rng.integers(-6, 7))
                sheet.put(piece, px, py)
                boxes.append(_ink_box(piece, px, py))
            sheet.numbers.append(Written(text, _union(boxes)))
        y += box_h + int(h * rng.uniform(0.8, 1.6))


def paper(sheet: _Sheet, kind: str) -> list[int]:
    """Print the paper's lines; returns the baselines handwriting sits on."""
    rng, h = sheet.rng, sheet.height
    pitch = int(h * rng.uniform(1.7, 2.2))
    shade = int(rng.integers(90, 170))
    if kind == "ruled":
        for y in range(100, sheet.h - 20, pitch):
            sheet.draw.line([(0, y), (sheet.w, y)], fill=shade, width=int(rng.integers(1, 3)))
        sheet.draw.line([(40, 0), (40, sheet.h)], fill=shade, width=2)
        return [y + int(h * 0.2) for y in range(100 + pitch, sheet.h - 40, pitch)]  # digits reach the line
    if kind == "squared":
        step = int(rng.integers(24, 40))
        for v in range(0, max(sheet.w, sheet.h), step):
            sheet.draw.line([(v, 0), (v, sheet.h)], fill=shade, width=1)
            sheet.draw.line([(0, v), (sheet.w, v)], fill=shade, width=1)
    return list(range(60 + h, sheet.h - 40, pitch))


def draw_page(kind: str, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
              numbers: bool = True) -> Page:
    """One page of `kind` (KINDS) with numbers from `images` (N, 28, 28) uint8 and their `labels`; with
    `numbers` False, a page of words, labels, ticks and signatures only (empty combs on a comb form)."""
    sheet = _Sheet(rng)
    paper_kind = PAPERS[int(rng.integers(len(PAPERS)))] if kind == "photo" else kind
    if paper_kind == "comb":
        comb_form(sheet, images, labels, numbers)
    else:
        fill_rows(sheet, paper(sheet, paper_kind), images, labels, numbers)
    photo = kind == "photo"
    pen = BLUE if photo and rng.random() < 0.5 else DARK
    rgb = _compose(sheet, pen)
    if not photo:
        return Page(Image.fromarray(_to_uint8(rgb)), kind, _ordered(sheet.numbers))
    return photograph(rgb, sheet.numbers, kind, rng)


def _compose(sheet: _Sheet, pen: tuple[float, float, float]) -> np.ndarray:
    """(H, W, 3) float: white paper, grey-blue print, then the handwriting in `pen`."""
    printed = np.asarray(sheet.print, np.float32)[..., None] / 255
    ink = sheet.ink[..., None]
    rgb = np.ones((sheet.h, sheet.w, 3), np.float32) * 0.97
    rgb = rgb * (1 - printed) + np.array([0.3, 0.35, 0.45], np.float32) * printed
    return rgb * (1 - ink) + np.array(pen, np.float32) * ink


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def photograph(rgb: np.ndarray, numbers: list[Written], kind: str, rng: np.random.Generator) -> Page:
    """Uneven light and a soft shadow, a slant of a few degrees, noise, JPEG; boxes follow the slant."""
    h, w, _ = rgb.shape
    light = rng.uniform(0.55, 0.8) + rng.uniform(0.2, 0.4) * light_ramp(h, w, rng.uniform(0, 2 * np.pi))
    if rng.random() < 0.5:  # a shadow across part of the page, its edge soft over some 30 pixels
        edge = np.clip((light_ramp(h, w, rng.uniform(0, 2 * np.pi), 0.3) - 0.7) * 0.3 * max(h, w) / 30 + 0.5, 0, 1)
        light = light * (1 - rng.uniform(0.2, 0.4) * edge)
    rgb = rgb * light[..., None].astype(np.float32) + rng.normal(0, 0.012, rgb.shape).astype(np.float32)
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
    moved = corners + rng.uniform(-0.025, 0.025, size=(4, 2)) * [w, h]
    img = Image.fromarray(_to_uint8(rgb)).transform((w, h), Image.Transform.PERSPECTIVE,
                                                      homography(moved, corners), Image.Resampling.BILINEAR,
                                                      fillcolor=(70, 70, 70))
    forward = homography(corners, moved)
    slanted = [Written(n.text, _slant_box(n.box, forward)) for n in numbers]
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(rng.integers(60, 92)))
    return Page(buf.getvalue(), kind, _ordered(slanted))


def homography(src: np.ndarray, dst: np.ndarray) -> tuple[float, ...]:
    """The 8 coefficients (Pillow's PERSPECTIVE) of the projective map taking points `src` (4, 2) to `dst`."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    return tuple(np.linalg.solve(np.array(rows), np.array(rhs)).tolist())


def apply_homography(c: tuple[float, ...], x: float, y: float) -> tuple[float, float]:
    d = c[6] * x + c[7] * y + 1
    return (c[0] * x + c[1] * y + c[2]) / d, (c[3] * x + c[4] * y + c[5]) / d


def _slant_box(box: tuple[int, int, int, int], c: tuple[float, ...]) -> tuple[int, int, int, int]:
    x, y, w, h = box
    pts = [apply_homography(c, px, py) for px, py in ((x, y), (x + w, y), (x + w, y + h), (x, y + h))]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return int(min(xs)), int(min(ys)), int(np.ceil(max(xs) - min(xs))), int(np.ceil(max(ys) - min(ys)))


def _ordered(numbers: list[Written]) -> list[Written]:
    return sorted(numbers, key=lambda n: (n.box[1], n.box[0]))


def page_set(kind: str, n: int, images: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> list[Page]:
    """`n` pages of `kind` from the digits `images` (N, 28, 28) uint8 with their `labels`."""
    return [draw_page(kind, images, labels, rng) for _ in range(n)]
