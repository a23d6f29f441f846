"""What the line reader (models: line-ctc) sees: a line of ink 32 pixels tall.

Reading (pictures.segment, inference.numbers) and the drawn training lines (synth.lines) both go
through `reader_input`, so the reader is trained on exactly the shape it is given.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from digitrec.models.networks import LINE_HEIGHT

INK_HEIGHT = 28  # the ink's rows are scaled to this many, with 2 blank rows above and below
SIDE_PAD = 4  # blank columns left and right


def reader_input(ink: np.ndarray) -> np.ndarray:
    """Ink (H, W) float, bright = ink, cropped to a line of digits → (32, W') float32 in [0, 1] for the line
    reader, W' a multiple of 4: the ink's rows fill 28 of the 32, its width scaled alike."""
    ink = np.clip(ink, 0, 1).astype(np.float32)
    rows = np.flatnonzero(ink.max(1) > 0.05)
    if len(rows):
        ink = ink[rows[0]:rows[-1] + 1]
    h, w = ink.shape
    width = max(1, round(w * INK_HEIGHT / h))
    small = np.asarray(Image.fromarray(ink).resize((width, INK_HEIGHT), Image.Resampling.BILINEAR), np.float32)
    total = width + 2 * SIDE_PAD
    total += -total % 4
    out = np.zeros((LINE_HEIGHT, total), np.float32)
    top = (LINE_HEIGHT - INK_HEIGHT) // 2
    out[top:top + INK_HEIGHT, SIDE_PAD:SIDE_PAD + width] = np.clip(small, 0, 1)
    return out

