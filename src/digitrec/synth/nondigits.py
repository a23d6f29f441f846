"""Things that are not digits, drawn the ways people draw them, rendered as MNIST-style 28×28 pictures.

A model that has only seen digits answers a digit for anything: an "A" is "a 4", a smiley "a 0".
Outlier exposure fixes that: training shows it non-digits too, under an answer of their own. The
kinds here are letters from font files (distorted into handwriting-like strokes), scribbles and
scattered strokes, doodles and shapes (a house, a smiley, a star, …), textures and noise, and
fragments of real digits (two overlapping, or a rotated piece of one). Every picture is drawn at
112×112 and rendered the MNIST way (`preprocess.normalize_ink`), as a digit would be.

The letters leave out those that are written like digits (O o Q D I l i j J Z z S s B b G g q),
and the font families are split: training and validation draw from DejaVu and Computer Modern,
the benchmark's test set from STIX alone, a family the model never saw.
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage as ndi

from digitrec.pictures.preprocess import normalize_ink

CANVAS = 112
LETTERS = [c for c in string.ascii_letters if c not in "OoQDIlijJZzSsBbGgq"]
FAMILIES = {
    "dejavu-sans": ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf"],
    "dejavu-serif": ["DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf"],
    "dejavu-mono": ["DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf"],
    "computer-modern": ["cmr10.ttf", "cmb10.ttf", "cmss10.ttf", "cmti10.ttf", "cmtt10.ttf"],
    "stix": ["STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf"],
}
TRAIN_FAMILIES = ("dejavu-sans", "dejavu-serif", "dejavu-mono", "computer-modern")
TEST_FAMILIES = ("stix",)
Drawer = Callable[[np.random.Generator], np.ndarray]  # → (CANVAS, CANVAS) float ink in [0, 1]


def font_dir() -> Path:
    """The fonts that ship with matplotlib (a dependency already): no system fonts needed."""
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@lru_cache(maxsize=256)
def _font(file: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_dir() / file), size)


# --- distortions: what turns a clean drawing into a handwritten-looking one ---


def warp(ink: np.ndarray, rng: np.random.Generator, degrees: float = 15, shear: float = 0.25,
         elastic: float = 4.0) -> np.ndarray:
    """A random rotation, shear and anisotropic scale, then a smooth random displacement (pixels)."""
    a, s = np.radians(rng.uniform(-degrees, degrees)), rng.uniform(-shear, shear)
    zoom = rng.uniform(0.8, 1.2, size=2)
    matrix = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ np.array([[1, s], [0, 1]]) @ np.diag(zoom)
    centre = np.array(ink.shape) / 2
    out = ndi.affine_transform(ink, matrix, offset=centre - matrix @ centre, order=1)
    field = [ndi.gaussian_filter(rng.uniform(-1, 1, ink.shape), 8) for _ in range(2)]
    field = [f / max(1e-6, np.abs(f).max()) * elastic for f in field]
    y, x = np.mgrid[0:ink.shape[0], 0:ink.shape[1]].astype(np.float32)
    return ndi.map_coordinates(out, [y + field[0], x + field[1]], order=1)


def pen(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random pen width: thicker (grey dilation) or thinner (erosion), sometimes neither."""
    k = int(rng.integers(-2, 4))
    if k > 0:
        return ndi.grey_dilation(ink, size=(k + 1, k + 1))
    if k < 0:
        thinner = ndi.grey_erosion(ink, size=(2, 2))
        return thinner if thinner.max() > 0.5 else ink
    return ink


def canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("L", (CANVAS, CANVAS), 0)
    return img, ImageDraw.Draw(img)


def as_ink(img: Image.Image) -> np.ndarray:
    return np.asarray(img, np.float32) / 255


def jitter(points: np.ndarray, rng: np.random.Generator, amount: float = 3.0) -> list[tuple[float, float]]:
    """A hand's wobble: each point moved a little."""
    moved = points + rng.normal(0, amount, points.shape)
    return [tuple(p) for p in moved.tolist()]


# --- the kinds ---


def letter(rng: np.random.Generator, families: tuple[str, ...]) -> np.ndarray:
    img, draw = canvas()
    family = families[int(rng.integers(len(families)))]
    file = FAMILIES[family][int(rng.integers(len(FAMILIES[family])))]
    char = LETTERS[int(rng.integers(len(LETTERS)))]
    font = _font(file, int(rng.integers(60, 90)))
    draw.text((CANVAS / 2, CANVAS / 2), char, fill=255, font=font, anchor="mm")
    return pen(warp(as_ink(img), rng), rng)


def scribble(rng: np.random.Generator) -> np.ndarray:
    """A tangle: one stroke through many random points, or several strokes scattered."""
    img, draw = canvas()
    width = int(rng.integers(4, 11))
    if rng.random() < 0.6:
        points = rng.uniform(20, 92, size=(int(rng.integers(6, 14)), 2))
        draw.line(_smooth(points), fill=255, width=width, joint="curve")
    else:
        for _ in range(int(rng.integers(3, 7))):
            start = rng.uniform(15, 97, size=2)
            end = start + rng.normal(0, 18, size=2)
            draw.line([tuple(start), tuple(end)], fill=255, width=width)
    return warp(as_ink(img), rng, elastic=3.0)


def _smooth(points: np.ndarray, steps: int = 8) -> list[tuple[float, float]]:
    """A Catmull-Rom curve through `points`: a pen's path, not a polyline."""
    p = np.vstack([points[:1], points, points[-1:]])
    out = []
    for i in range(1, len(p) - 2):
        for t in np.linspace(0, 1, steps, endpoint=False):
            a, b, c, d = p[i - 1], p[i], p[i + 1], p[i + 2]
            out.append(0.5 * (2 * b + (c - a) * t + (2 * a - 5 * b + 4 * c - d) * t * t
                              + (3 * b - a - 3 * c + d) * t ** 3))
    out.append(p[-2])
    return [tuple(q) for q in np.asarray(out).tolist()]


def _polygon(draw: ImageDraw.ImageDraw, pts: np.ndarray, rng, width: int, closed: bool = True) -> None:
    pts = jitter(pts, rng)
    draw.line(pts + ([pts[0]] if closed else []), fill=255, width=width, joint="curve")


def doodle(rng: np.random.Generator) -> np.ndarray:
    """A shape or a small drawing: house, smiley, star, heart, arrow, cross, spiral, zigzag, …"""
    img, draw = canvas()
    width = int(rng.integers(4, 10))
    kind = DOODLES[int(rng.integers(len(DOODLES)))]
    kind(draw, rng, width)
    return warp(as_ink(img), rng, degrees=20, elastic=3.0)


def _house(draw, rng, w):
    x0, x1, y0, y1 = 30, 82, 55, 95
    _polygon(draw, np.array([[x0, y1], [x0, y0], [x1, y0], [x1, y1]]), rng, w)
    _polygon(draw, np.array([[x0 - 6, y0], [56, rng.uniform(15, 30)], [x1 + 6, y0]]), rng, w, closed=False)
    if rng.random() < 0.7:
        _polygon(draw, np.array([[50, y1], [50, 75], [62, 75], [62, y1]]), rng, w, closed=False)


def _smiley(draw, rng, w):
    r = rng.uniform(34, 44)
    draw.ellipse((56 - r, 56 - r, 56 + r, 56 + r), outline=255, width=w)
    for ex in (42, 70):
        draw.ellipse((ex - 4, 40, ex + 4, 48), fill=255)
    mouth = np.array([[36, 68], [46, 78], [56, 80], [66, 78], [76, 68]])
    draw.line(_smooth(mouth if rng.random() < 0.8 else mouth * [1, -1] + [0, 146]), fill=255, width=w)


def _star(draw, rng, w):
    angles = np.linspace(-np.pi / 2, 3.5 * np.pi, 6)[:5]
    outer = np.stack([56 + 42 * np.cos(angles), 58 + 42 * np.sin(angles)], 1)
    _polygon(draw, outer[[0, 2, 4, 1, 3]], rng, w)


def _heart(draw, rng, w):
    t = np.linspace(0, 2 * np.pi, 40)
    pts = np.stack([56 + 2.6 * 16 * np.sin(t) ** 3,
                    50 - 2.6 * (13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))], 1)
    _polygon(draw, pts, rng, w)


def _arrow(draw, rng, w):
    _polygon(draw, np.array([[15, 56], [97, 56]]), rng, w, closed=False)
    _polygon(draw, np.array([[75, 36], [97, 56], [75, 76]]), rng, w, closed=False)


def _cross(draw, rng, w):
    if rng.random() < 0.5:
        _polygon(draw, np.array([[20, 20], [92, 92]]), rng, w, closed=False)
        _polygon(draw, np.array([[92, 20], [20, 92]]), rng, w, closed=False)
    else:
        _polygon(draw, np.array([[56, 14], [56, 98]]), rng, w, closed=False)
        _polygon(draw, np.array([[14, 56], [98, 56]]), rng, w, closed=False)


def _spiral(draw, rng, w):
    t = np.linspace(0, rng.uniform(3.5, 5) * np.pi, 60)
    r = 4 + 40 * t / t[-1]
    draw.line(jitter(np.stack([56 + r * np.cos(t), 56 + r * np.sin(t)], 1), rng, 1.5), fill=255, width=w)


def _zigzag(draw, rng, w):
    n = int(rng.integers(5, 9))
    xs = np.linspace(14, 98, n)
    ys = np.where(np.arange(n) % 2, 30, 82)
    _polygon(draw, np.stack([xs, ys], 1), rng, w, closed=False)


def _rectangle(draw, rng, w):
    x0, y0 = rng.uniform(14, 35, size=2)
    x1, y1 = rng.uniform(77, 98, size=2)
    _polygon(draw, np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]]), rng, w)


def _triangle(draw, rng, w):
    _polygon(draw, np.array([[56, 14], [98, 92], [14, 92]]), rng, w)


def _grid(draw, rng, w):
    for k in (40, 72):
        _polygon(draw, np.array([[k, 14], [k, 98]]), rng, w, closed=False)
        _polygon(draw, np.array([[14, k], [98, k]]), rng, w, closed=False)


def _wave(draw, rng, w):
    x = np.linspace(10, 102, 40)
    draw.line(jitter(np.stack([x, 56 + 18 * np.sin(x / 102 * rng.uniform(3, 5) * np.pi)], 1), rng, 1), fill=255,
              width=w)


DOODLES = [_house, _smiley, _star, _heart, _arrow, _cross, _spiral, _zigzag, _rectangle, _triangle, _grid, _wave]


def texture(rng: np.random.Generator) -> np.ndarray:
    """Noise, hatching, dots or a checkerboard: pictures with no strokes at all."""
    kind = int(rng.integers(4))
    if kind == 0:
        return ndi.gaussian_filter(rng.random((CANVAS, CANVAS)), rng.uniform(0.5, 3)) * rng.uniform(1, 2)
    img, draw = canvas()
    if kind == 1:
        step, width = int(rng.integers(10, 20)), int(rng.integers(3, 7))
        for k in range(-CANVAS, 2 * CANVAS, step):
            draw.line([(k, 0), (k + CANVAS, CANVAS)], fill=255, width=width)
    elif kind == 2:
        for x, y in rng.uniform(10, 102, size=(int(rng.integers(8, 30)), 2)):
            r = rng.uniform(2, 6)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    else:
        cell = int(rng.integers(12, 28))
        for y in range(0, CANVAS, cell):
            for x in range((y // cell % 2) * cell, CANVAS, 2 * cell):
                draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=255)
    return np.clip(warp(as_ink(img), rng, elastic=2.0), 0, 1)


def fragment(rng: np.random.Generator, digits: np.ndarray) -> np.ndarray:
    """Two real digits overlapping: one picture, but no one digit. (Pieces of a single digit were
    tried and dropped: a piece of one stroke is a 1 or a 7, and taught the model to refuse those.)"""
    pick = digits[rng.integers(len(digits), size=2)]
    big = [np.asarray(Image.fromarray(d).resize((CANVAS // 2, CANVAS // 2), Image.Resampling.BICUBIC),
                      np.float32) / 255 for d in pick]
    out = np.zeros((CANVAS, CANVAS), np.float32)
    dx, dy = int(rng.integers(14, 32)), int(rng.integers(-10, 11))  # apart enough to be two
    out[28:84, 20:76] = big[0]
    out[28 + dy:84 + dy, 20 + dx:76 + dx] = np.maximum(out[28 + dy:84 + dy, 20 + dx:76 + dx], big[1])
    return np.clip(out, 0, 1)


KINDS = ("letter", "scribble", "doodle", "texture", "fragment")
WEIGHTS = (0.35, 0.15, 0.25, 0.10, 0.15)


def non_digits(n: int, rng: np.random.Generator, digits: np.ndarray, families: tuple[str, ...] = TRAIN_FAMILIES,
               weights: tuple[float, ...] = WEIGHTS) -> tuple[np.ndarray, np.ndarray]:
    """`n` non-digits, MNIST-style: ((n, 28, 28) uint8, (n,) index into KINDS). `digits` (M, 28, 28)
    uint8 are the real digits fragments are cut from: take them from the same split as the rest."""
    kinds = rng.choice(len(KINDS), size=n, p=np.asarray(weights) / sum(weights))
    out = np.zeros((n, 28, 28), np.uint8)
    for i, k in enumerate(kinds):
        name = KINDS[k]
        ink = (letter(rng, families) if name == "letter" else fragment(rng, digits) if name == "fragment"
               else {"scribble": scribble, "doodle": doodle, "texture": texture}[name](rng))
        out[i] = normalize_ink(np.clip(ink, 0, 1))
    return out, kinds
