"""segment.line(): a picture of a number → its groups of ink, each read as a digit or by the line reader."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from digitrec.errors import DigitrecError
from digitrec.pictures.segment import MAX_DIGITS, line
from digitrec.synth.variants import number_picture


def pick(mnist_test, digits: str, k: int = 0) -> list[np.ndarray]:
    """The k-th test image of each digit in `digits`."""
    return [mnist_test.images[np.flatnonzero(mnist_test.labels == int(d))[k]] for d in digits]


def test_digits_standing_apart_are_one_group_each(mnist_test):
    digits = pick(mnist_test, "2026")
    ln = line(number_picture(digits, [10, 10, 10]))
    assert len(ln.groups) == 4 and [g.left for g in ln.groups] == sorted(g.left for g in ln.groups)
    for group, digit in zip(ln.groups, digits):  # each renders as the digit placed there
        image = ln.digit(group)
        corr = np.corrcoef(image.ravel().astype(float), digit.ravel().astype(float))[0, 1]
        assert image.shape == (28, 28) and corr > 0.6


def test_touching_digits_are_one_group_and_the_reader_sees_the_whole_line(mnist_test):
    ln = line(number_picture(pick(mnist_test, "2026"), [-2, -2, -2]))
    assert len(ln.groups) < 4
    x, scale = ln.reader_input()
    assert x.shape[0] == 32 and x.shape[1] % 4 == 0 and x.max() <= 1 and 0.2 < scale < 1


def test_boxes_are_in_the_pictures_own_pixels(mnist_test):
    picture = number_picture(pick(mnist_test, "47"), [12], scale=10)  # 10× MNIST: read at a smaller scale
    ln = line(picture)
    (x0, y0, w0, h0), (x1, _, w1, _) = (ln.box(g) for g in ln.groups)
    assert picture.height == 400 and 160 < h0 < 240 and x1 > x0 + w0 > 0  # MNIST's 20 of 40 rows
    ink = np.asarray(picture.convert("L")) < 128
    cols = np.flatnonzero(ink.any(0))
    assert abs(x0 - cols[0]) <= 12 and abs(x1 + w1 - cols[-1]) <= 12
    left, right = ln.groups[0].left, ln.groups[0].right  # a share of a group: its own columns only
    xa, _, wa, _ = ln.box(ln.groups[0], left, (left + right) // 2)
    assert xa == x0 and wa < w0


def test_broken_digit_stays_one(mnist_test):
    five = pick(mnist_test, "5", 2)[0].copy()
    rows = np.flatnonzero(five.max(1) > 0)
    five[rows[0] + 5: rows[0] + 7] = 0  # a gap across the 5: its bar comes loose
    ln = line(number_picture([pick(mnist_test, "3")[0], five, pick(mnist_test, "1")[0]], [8, 8]))
    assert len(ln.groups) == 3


def test_blank_picture():
    assert line(Image.new("L", (400, 100), 255)).blank


def test_too_many_digits_or_too_wide_is_a_clear_error(mnist_test):
    many = pick(mnist_test, "1234567890" * 4)
    with pytest.raises(DigitrecError, match=f"more than {MAX_DIGITS} digits"):
        line(number_picture(many, [6] * (len(many) - 1)), "long.png")
    with pytest.raises(DigitrecError, match="wide.png: picture is 20,001 pixels wide"):
        line(Image.new("L", (20_001, 50), 255), "wide.png")
