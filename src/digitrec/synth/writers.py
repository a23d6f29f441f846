"""Digits and letters written by the handwriting fonts (data.fonts): writers beyond MNIST's.

Each glyph is drawn at 112×112 and then varied the ways one person's writing varies from day to day:
its size, a slant (shear), the pen's width (grey dilation or erosion), an elastic warp of the strokes
and the pen's pressure (the ink's strength rising and falling smoothly along the strokes), before it
is rendered the MNIST way (`preprocess.normalize_ink`) as a digit would be.

Letters of the same fonts (those not written like digits: nondigits.LETTERS) and, where a family
has them, Cyrillic letters (another script) are non-digits. A glyph a font lacks (its .notdef box)
is left out for that font; a font file that cannot be read is named in one line and skipped.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage as ndi

from digitrec.data.fonts import Font
from digitrec.pictures.preprocess import normalize_ink
from digitrec.synth.nondigits import CANVAS, LETTERS, pen, warp

DIGITS = "0123456789"
# Cyrillic letters not written like a digit or a Latin letter left out (З з Ч ч б О о Ь ь Ъ ъ are)
CYRILLIC = "ДЖИЙЛПФЦШЩЫЭЮЯдживлпфцшщыэюя"


@lru_cache(maxsize=512)
def _face(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@lru_cache(maxsize=256)
def glyphs(path: str, chars: str) -> str:
    """The characters of `chars` the font draws (not as its .notdef box, not blank)."""
    face = _face(path, 48)
    missing = _bitmap(face, "\U0010fffd")
    return "".join(c for c in chars if (b := _bitmap(face, c)) is not None and b != missing)


def _bitmap(face: ImageFont.FreeTypeFont, char: str) -> bytes | None:
    mask = face.getmask(char)
    return bytes(mask) if mask.getbbox() else None


def draw(font_path: str, char: str, rng: np.random.Generator) -> np.ndarray:
    """One glyph, varied (see the module's docstring): (28, 28) uint8, MNIST-style."""
    img = Image.new("L", (CANVAS, CANVAS), 0)
    ImageDraw.Draw(img).text((CANVAS / 2, CANVAS / 2), char, fill=255, anchor="mm",
                             font=_face(font_path, int(rng.integers(56, 84))))
    ink = np.asarray(img, np.float32) / 255
    ink = pen(warp(ink, rng, degrees=8, shear=0.35, elastic=float(rng.uniform(1.0, 4.0))), rng)
    return normalize_ink(np.clip(ink * pressure(rng), 0, 1))


def pressure(rng: np.random.Generator) -> np.ndarray:
    """(CANVAS, CANVAS) in [0.6, 1]: the pen pressing harder here and lighter there, smoothly."""
    field = ndi.gaussian_filter(rng.uniform(0, 1, (CANVAS, CANVAS)), 14)
    field = (field - field.min()) / max(1e-6, float(np.ptp(field)))
    low = rng.uniform(0.6, 1.0)
    return (low + (1 - low) * field).astype(np.float32)


def usable(fonts: list[Font], chars: str, say: Callable[[str], None] = print) -> list[tuple[Font, str]]:
    """(font, the characters of `chars` it draws) for each readable font that draws any; others named."""
    out = []
    for font in fonts:
        try:
            have = glyphs(str(font.path), chars)
        except OSError as e:
            say(f"font {font.name}: {font.path} cannot be read ({e}); skipped")
            continue
        if have:
            out.append((font, have))
    return out


def font_digits(n: int, fonts: list[Font], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """About `n` digits, an equal share per digit, each in a random font that has it: ((n, 28, 28) uint8,
    (n,) labels)."""
    have = usable(fonts, DIGITS)
    labels = np.arange(n) % 10
    images = np.zeros((n, 28, 28), np.uint8)
    for i, label in enumerate(labels):
        choices = [f for f, chars in have if str(label) in chars]
        images[i] = draw(str(choices[int(rng.integers(len(choices)))].path), str(label), rng)
    return images, labels.astype(np.int64)


def font_letters(n: int, fonts: list[Font], rng: np.random.Generator, other_script: float = 0.25) -> np.ndarray:
    """`n` letters in the fonts (not written like digits), `other_script` of them Cyrillic where a family has it:
    (n, 28, 28) uint8."""
    latin = usable(fonts, "".join(LETTERS))
    scripts = [Font(f"{f.name} (Cyrillic)", f.other_script, f.source, f.licence) for f in fonts if f.other_script]
    cyrillic = [(f.path, chars) for f, chars in usable(scripts, CYRILLIC)]
    images = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        pool = cyrillic if cyrillic and rng.random() < other_script else [(f.path, c) for f, c in latin]
        path, chars = pool[int(rng.integers(len(pool)))]
        images[i] = draw(str(path), chars[int(rng.integers(len(chars)))], rng)
    return images
