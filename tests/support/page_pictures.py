"""Pages for the page-reading tests: drawn from the validation digits (the only ones settings are tuned on)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from digitrec.data import train_val_split
from digitrec.synth.nondigits import font_dir


def validation_digits(mnist_train) -> tuple[np.ndarray, np.ndarray]:
    val = train_val_split(mnist_train)[1]
    return val.images, val.labels


def as_image(picture: Image.Image | bytes) -> Image.Image:
    return picture if isinstance(picture, Image.Image) else Image.open(io.BytesIO(picture))


def text_page(lines: int = 30) -> Image.Image:
    """A page of printed text: hundreds of small blobs of ink, no handwritten number."""
    img = Image.new("L", (1400, 1000), 245)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(font_dir() / "DejaVuSerif.ttf"), 22)
    words = "the quick brown fox jumps over a lazy dog while page reading looks for every number".split()
    rng = np.random.default_rng(0)
    for k in range(lines):
        draw.text((40, 20 + 32 * k), " ".join(rng.choice(words, 14)), fill=20, font=font)
    return img


def centre_on(box, truth_box) -> bool:
    """Whether the centre of `box` (a Box) lies in `truth_box` (x, y, width, height)."""
    cx, cy = box.x + box.width / 2, box.y + box.height / 2
    x, y, w, h = truth_box
    return x <= cx <= x + w and y <= cy <= y + h
