"""Pictures of whole numbers made from real MNIST digits, for the number reader's tests and benchmark.

The drawing lives in `synth.lines` (training draws its number lines there too); this is the
tests' and the benchmark's view of it: (picture, the number it shows). docs/numbers.md says how to
rebuild the benchmark's sets.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from digitrec.synth.lines import KINDS, ONES_SEVENS, number_lines

__all__ = ["BENCH_KINDS", "KINDS", "number_set"]
BENCH_KINDS = (*KINDS, ONES_SEVENS)  # the benchmark's sets: KINDS, and 1s and 7s side by side


def number_set(kind: str, n: int, images: np.ndarray, labels: np.ndarray,
               rng: np.random.Generator) -> list[tuple[Image.Image | bytes, str]]:
    """`n` (picture, the number it shows) of `kind` (apart, touching, overlapping, photographed, ones-sevens)."""
    return [(picture, text) for picture, text, _ in number_lines(kind, n, images, labels, rng)]
