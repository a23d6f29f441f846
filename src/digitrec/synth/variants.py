"""Pictures of real MNIST digits made the way people make them (test variants), for tests and benchmarks.

Each variant takes one MNIST digit (28×28 uint8, ink bright) and a NumPy random
generator and returns what a user would hand to `digitrec predict`: a PIL image,
or encoded bytes for JPEG. `tests/pictures/test_preprocess.py` and
`bench/predict_variants.py` use the same variants, so the numbers in the
benchmark are about the pictures the tests check.
"""

from __future__ import annotations

import io
from typing import Callable

import numpy as np
from PIL import Image

from digitrec.synth.lines import light_ramp, number_line, on_paper

Variant = Callable[[np.ndarray, np.random.Generator], "Image.Image | bytes | np.ndarray"]


def upscale(digit: np.ndarray, side: int) -> np.ndarray:
    """(28, 28) uint8 → (side, side) float ink in [0, 1], smooth (bicubic)."""
    big = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
    return np.asarray(big, dtype=np.float32) / 255.0


def mnist(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return digit


def white_300(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Black ink on white paper, 300×300: a scan or a drawing app's export."""
    return Image.fromarray(on_paper(upscale(digit, 300)))


def off_centre(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A 150-pixel digit somewhere on a 400×300 white RGB page, not in the middle."""
    page = np.zeros((300, 400), np.float32)
    top, left = int(rng.integers(0, 150)), int(rng.integers(0, 250))
    page[top:top + 150, left:left + 150] = upscale(digit, 150)
    return Image.fromarray(on_paper(page)).convert("RGB")


def skeleton(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning: peel boundary pixels that are not needed to keep the shape
    connected until every stroke is one pixel wide. (H, W) bool → (H, W) bool."""
    img = np.pad(mask, 1).astype(np.uint8)
    while True:
        changed = False
        for step in (0, 1):
            p = [np.roll(np.roll(img, -dy, 0), -dx, 1) for dy, dx in
                 ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))]  # P2..P9
            neighbours = sum(p)
            transitions = sum((p[i] == 0) & (p[(i + 1) % 8] == 1) for i in range(8))
            if step == 0:
                gone = (p[0] * p[2] * p[4] == 0) & (p[2] * p[4] * p[6] == 0)
            else:
                gone = (p[0] * p[2] * p[6] == 0) & (p[0] * p[4] * p[6] == 0)
            remove = (img == 1) & (neighbours >= 2) & (neighbours <= 6) & (transitions == 1) & gone
            if remove.any():
                img[remove] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def thin(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A 2-pixel pen (or mouse) stroke on a 300×300 white canvas, a tenth of MNIST's width:
    the digit's skeleton at 150×150, drawn at 300×300."""
    lines = skeleton(upscale(digit, 150) > 0.5)
    big = np.asarray(Image.fromarray(lines).resize((300, 300), Image.Resampling.NEAREST), np.float32)
    return Image.fromarray(on_paper(big))


def large(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Black on white, 1200×1200: larger than preprocessing's working size, so it is shrunk."""
    return Image.fromarray(on_paper(upscale(digit, 1200)))


def rgb_colour(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Blue ballpoint on cream paper, RGB."""
    ink = upscale(digit, 300)[..., None]
    paper, pen = np.array([0.96, 0.93, 0.85]), np.array([0.1, 0.2, 0.7])
    rgb = paper * (1 - ink) + pen * ink
    return Image.fromarray((rgb * 255 + 0.5).astype(np.uint8), "RGB")


def rgba_transparent(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """Black strokes on a transparent background: the strokes exist only in the alpha channel."""
    alpha = (upscale(digit, 300) * 255 + 0.5).astype(np.uint8)
    rgba = np.zeros((300, 300, 4), np.uint8)
    rgba[..., 3] = alpha
    return Image.fromarray(rgba, "RGBA")


def jpeg(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Black on white 300×300, saved as a JPEG at quality 50 (visible artefacts)."""
    buf = io.BytesIO()
    white_300(digit, rng).save(buf, format="JPEG", quality=50)
    return buf.getvalue()


def uneven_grey(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A photo of grey paper lit from one side: the light falls from 1.0 to 0.25 across the
    page, so the paper in the shadow is darker than the ink in the light and no single
    threshold separates them; plus sensor noise."""
    side = 300
    light = 0.25 + 0.75 * light_ramp(side, side, rng.uniform(0, 2 * np.pi), spread=0.71)
    ink = upscale(digit, side)
    grey = light * (0.8 * (1 - ink) + 0.12 * ink) + rng.normal(0, 0.01, ink.shape)
    return Image.fromarray((np.clip(grey, 0, 1) * 255 + 0.5).astype(np.uint8))


VARIANTS: dict[str, Variant] = {
    "mnist-28x28": mnist,
    "white-300": white_300,
    "large-1200": large,
    "off-centre": off_centre,
    "thin-strokes": thin,
    "rgb-colour": rgb_colour,
    "rgba-alpha": rgba_transparent,
    "jpeg-q50": jpeg,
    "uneven-grey": uneven_grey,
}


def number_picture(digits: list[np.ndarray], gaps: list[int], scale: int = 4) -> Image.Image:
    """MNIST digits side by side, `gaps[i]` pixels (28-pixel scale; 0 = touching, negative = overlapping)
    between digit i and i+1; black on white, ×scale (synth.lines.number_line, without the spans)."""
    return number_line(digits, gaps, scale)[0]
