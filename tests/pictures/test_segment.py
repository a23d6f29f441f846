"""segment(): a picture of a number → one MNIST-style input per digit, left to right."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from digitrec.pictures.segment import segment
from digitrec.testing.synthetic import number_picture


def pick(mnist_test, digits: str, k: int = 0) -> list[np.ndarray]:
    """The k-th test image of each digit in `digits`."""
    return [mnist_test.images[np.flatnonzero(mnist_test.labels == int(d))[k]] for d in digits]


@pytest.mark.parametrize("gaps", [[10, 10, 10], [2, 5, 1], [0, 0, 0]], ids=["wide", "narrow", "touching"])
def test_digit_count_and_order(mnist_test, gaps):
    digits = pick(mnist_test, "2026")
    parts = segment(number_picture(digits, gaps))
    assert len(parts) == 4
    # each part is the digit that was placed there: compare with preprocessing it alone
    for part, digit in zip(parts, digits):
        assert part.image.shape == (28, 28) and not part.blank
        corr = np.corrcoef(part.image.ravel().astype(float), digit.ravel().astype(float))[0, 1]
        assert corr > 0.5


def test_broken_digit_stays_one(mnist_test):
    five = pick(mnist_test, "5", 2)[0].copy()
    rows = np.flatnonzero(five.max(1) > 0)
    five[rows[0] + 5: rows[0] + 7] = 0  # a gap across the 5: its bar comes loose
    parts = segment(number_picture([pick(mnist_test, "3")[0], five, pick(mnist_test, "1")[0]], [8, 8]))
    assert len(parts) == 3


def test_blank_picture_has_no_digits():
    assert segment(Image.new("L", (400, 100), 255)) == []


def test_single_digit_is_one_part(mnist_test):
    assert len(segment(number_picture(pick(mnist_test, "8"), []))) == 1
