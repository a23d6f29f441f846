"""Pictures of whole numbers made from real MNIST digits, for the number reader's tests and benchmark.

Four kinds, each a number of 2-6 digits (bench/numbers.py; docs/predict.md says how to rebuild them):

- apart: neighbours 2-8 pixels apart (at MNIST's 28-pixel scale);
- touching: neighbours overlap by 1-3 pixels, so their ink meets;
- overlapping: neighbours' boxes overlap by 5-30% of the narrower digit's width;
- photographed: one of the three above, photographed: uneven light, sensor noise, a slight
  rotation, JPEG.

The tests and the benchmark build them from MNIST *test* digits; the reader's two constants were
chosen on the same kinds built from the validation digits (the held-out part of the training set).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from digitrec.testing.synthetic import number_picture

KINDS = ("apart", "touching", "overlapping", "photographed")


def ink_width(digit: np.ndarray) -> int:
    cols = np.flatnonzero(digit.max(0) > 0)
    return int(cols[-1] - cols[0] + 1) if len(cols) else 0


def gaps_for(kind: str, digits: list[np.ndarray], rng: np.random.Generator) -> list[int]:
    out = []
    for a, b in zip(digits, digits[1:]):
        if kind == "apart":
            out.append(int(rng.integers(2, 9)))
        elif kind == "touching":
            out.append(-int(rng.integers(1, 4)))
        else:
            out.append(-int(round(rng.uniform(0.05, 0.30) * min(ink_width(a), ink_width(b)))))
    return out


def photograph(picture: Image.Image, rng: np.random.Generator) -> bytes:
    """A phone photo of a paper number: grey paper lit unevenly, noise, a slight tilt, JPEG."""
    ink = 1 - np.asarray(picture.convert("L"), np.float32) / 255
    h, w = ink.shape
    y, x = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * (x / w - 0.5) + np.sin(angle) * (y / h - 0.5)) + 0.5
    light = rng.uniform(0.45, 0.7) + rng.uniform(0.25, 0.45) * np.clip(ramp, 0, 1)
    grey = light * (0.85 * (1 - ink) + 0.12 * ink) + rng.normal(0, 0.015, ink.shape)
    photo = Image.fromarray((np.clip(grey, 0, 1) * 255 + 0.5).astype(np.uint8))
    photo = photo.rotate(rng.uniform(-3, 3), resample=Image.Resampling.BILINEAR, expand=True,
                         fillcolor=int(np.median(np.asarray(photo))))
    buf = io.BytesIO()
    photo.save(buf, format="JPEG", quality=int(rng.integers(60, 91)))
    return buf.getvalue()


def number_set(kind: str, n: int, images: np.ndarray, labels: np.ndarray,
               rng: np.random.Generator) -> list[tuple[Image.Image | bytes, str]]:
    """`n` (picture, the number it shows) of `kind`, from (N, 28, 28) `images` and their `labels`."""
    out = []
    for _ in range(n):
        count = int(rng.integers(2, 7))
        picks = rng.choice(len(images), size=count, replace=False)
        digits = [images[i] for i in picks]
        base = kind if kind != "photographed" else KINDS[int(rng.integers(3))]
        picture = number_picture(digits, gaps_for(base, digits, rng))
        text = "".join(str(int(labels[i])) for i in picks)
        out.append((photograph(picture, rng) if kind == "photographed" else picture, text))
    return out
