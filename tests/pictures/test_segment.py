"""segment.lattice(): a picture of a number → atoms of ink and every run of them that may be one digit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from digitrec.errors import DigitrecError
from digitrec.pictures.segment import MAX_DIGITS, lattice
from digitrec.testing.synthetic import number_picture


def pick(mnist_test, digits: str, k: int = 0) -> list[np.ndarray]:
    """The k-th test image of each digit in `digits`."""
    return [mnist_test.images[np.flatnonzero(mnist_test.labels == int(d))[k]] for d in digits]


def test_digits_standing_apart_are_each_one_candidate_and_nothing_joins_them(mnist_test):
    digits = pick(mnist_test, "2026")
    cut = lattice(number_picture(digits, [10, 10, 10]))
    assert len(cut.atoms) == 4 and [(c.first, c.last) for c in cut.candidates] == [(i, i) for i in range(4)]
    for candidate, digit in zip(cut.candidates, digits):  # each is the digit placed there
        corr = np.corrcoef(candidate.image.ravel().astype(float), digit.ravel().astype(float))[0, 1]
        assert candidate.image.shape == (28, 28) and corr > 0.5


def test_boxes_are_in_the_pictures_own_pixels(mnist_test):
    picture = number_picture(pick(mnist_test, "47"), [12], scale=10)  # 10× MNIST: read at a smaller scale
    cut = lattice(picture)
    (x0, y0, w0, h0), (x1, _, _, _) = (c.box for c in cut.candidates)
    assert picture.height == 400 and 160 < h0 < 240 and x1 > x0 + w0 > 0  # MNIST's 20 of 40 rows
    ink = np.asarray(picture.convert("L")) < 128
    cols = np.flatnonzero(ink.any(0))
    assert abs(x0 - cols[0]) <= 12 and abs(x1 + cut.candidates[1].box[2] - cols[-1]) <= 12


def test_touching_digits_are_cut_into_pieces_the_reader_can_join(mnist_test):
    cut = lattice(number_picture(pick(mnist_test, "2026"), [-2, -2, -2]))
    assert len(cut.atoms) >= 4  # cut at the thinnest columns
    spans = {(c.first, c.last) for c in cut.candidates}
    assert all((i, i) in spans for i in range(len(cut.atoms))) and any(b > a for a, b in spans)


def test_broken_digit_stays_one(mnist_test):
    five = pick(mnist_test, "5", 2)[0].copy()
    rows = np.flatnonzero(five.max(1) > 0)
    five[rows[0] + 5: rows[0] + 7] = 0  # a gap across the 5: its bar comes loose
    cut = lattice(number_picture([pick(mnist_test, "3")[0], five, pick(mnist_test, "1")[0]], [8, 8]))
    assert len(cut.atoms) == 3


def test_blank_picture_and_a_single_wide_digit(mnist_test):
    assert lattice(Image.new("L", (400, 100), 255)).blank
    cut = lattice(number_picture(pick(mnist_test, "8"), []))  # wider than tall: cut, and whole again
    assert any(c.first == 0 and c.last == len(cut.atoms) - 1 for c in cut.candidates)


def test_too_many_digits_or_too_wide_is_a_clear_error(mnist_test):
    many = pick(mnist_test, "1234567890" * 4)
    with pytest.raises(DigitrecError, match=f"more than {MAX_DIGITS} digits"):
        lattice(number_picture(many, [6] * (len(many) - 1)), "long.png")
    with pytest.raises(DigitrecError, match="wide.png: picture is 20,001 pixels wide"):
        lattice(Image.new("L", (20_001, 50), 255), "wide.png")
