"""Synthetic non-digits: every kind drawn, MNIST-style, reproducible, and letters that are not digits."""

from __future__ import annotations

import numpy as np

from digitrec.pictures.preprocess import mnist_style
from digitrec.synth import nondigits


def test_non_digits_of_every_kind_are_mnist_style_and_reproducible(mnist_test):
    images, kinds = nondigits.non_digits(60, np.random.default_rng(0), mnist_test.images[:200])
    again, _ = nondigits.non_digits(60, np.random.default_rng(0), mnist_test.images[:200])
    assert images.shape == (60, 28, 28) and images.dtype == np.uint8 and np.array_equal(images, again)
    assert set(kinds.tolist()) == set(range(len(nondigits.KINDS)))
    assert (images.max((1, 2)) > 100).all()  # nothing blank
    inked = [mnist_style(d.astype(np.float32) / 255) is not None for d in images]
    assert np.mean(inked) > 0.8  # fitted into the 20-pixel box and centred, as digits are


def test_letters_leave_out_those_written_like_digits_and_the_test_family_is_held_back():
    assert not set("OoIlZzSsBbgq") & set(nondigits.LETTERS) and {"A", "k", "x"} <= set(nondigits.LETTERS)
    assert not set(nondigits.TEST_FAMILIES) & set(nondigits.TRAIN_FAMILIES)
    for family in nondigits.FAMILIES.values():
        assert all((nondigits.font_dir() / f).is_file() for f in family)
