"""The made-up pages: every kind draws numbers with their truth, the same page for the same seed."""

from __future__ import annotations

import numpy as np
import pytest
from page_pictures import as_image, validation_digits

from digitrec.synth.pages import KINDS, SIZE, draw_page


@pytest.fixture(scope="module")
def digits(mnist_train):
    return validation_digits(mnist_train)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_draws_numbers_whose_boxes_hold_dark_ink(kind, digits):
    page = draw_page(kind, *digits, np.random.default_rng(3))
    img = as_image(page.picture)
    assert img.size == SIZE
    assert page.numbers, "a page with no number to read"
    gray = np.asarray(img.convert("L"), np.float32)
    for number in page.numbers:
        assert number.text.isdigit() and 1 <= len(number.text) <= 8
        x, y, w, h = number.box
        assert 0 <= x and 0 <= y and x + w <= SIZE[0] + 2 and y + h <= SIZE[1] + 2
        inside = gray[y:y + h, x:x + w]
        assert inside.min() < np.median(gray) - 80, f"no ink in the box of {number.text}"
    assert page.numbers == sorted(page.numbers, key=lambda n: (n.box[1], n.box[0]))


def test_a_photo_is_a_jpeg_and_a_page_is_the_same_for_the_same_seed(digits):
    a = draw_page("photo", *digits, np.random.default_rng(5))
    b = draw_page("photo", *digits, np.random.default_rng(5))
    assert isinstance(a.picture, bytes) and a.picture[:2] == b"\xff\xd8"
    assert a.picture == b.picture and a.numbers == b.numbers


@pytest.mark.parametrize("kind", ["ruled", "comb"])
def test_a_page_without_numbers_has_marks_but_no_truth(kind, digits):
    page = draw_page(kind, *digits, np.random.default_rng(9), numbers=False)
    assert page.numbers == []
    gray = np.asarray(as_image(page.picture).convert("L"))
    assert (gray < 160).sum() > 500, "no marks drawn"
