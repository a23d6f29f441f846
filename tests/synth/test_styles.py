"""The world's digit styles: each habit changes its digit where it should, and the result is MNIST-style."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.pictures.preprocess import mnist_style
from digitrec.synth import styles


def ink_rows(image: np.ndarray) -> np.ndarray:
    return np.flatnonzero((image > 76).any(1))


@pytest.mark.parametrize("habit", sorted(styles.HABITS))
def test_every_habit_redraws_its_digits_mnist_style(habit, mnist_test):
    label, _ = styles.HABITS[habit]
    originals = mnist_test.images[mnist_test.labels == label][:40]
    redrawn = styles.restyle(originals, np.full(len(originals), label), habit, np.random.default_rng(0))
    assert redrawn.shape == originals.shape and redrawn.dtype == np.uint8
    changed = [np.abs(a.astype(int) - b).sum() > 255 * 4 for a, b in zip(originals, redrawn)]
    assert np.mean(changed) > 0.9  # the habit shows
    assert all(mnist_style(d.astype(np.float32) / 255) is not None for d in redrawn)  # 20-pixel box, centred


def test_habits_draw_where_the_habit_is(mnist_test):
    rng = np.random.default_rng(1)
    sevens = mnist_test.images[mnist_test.labels == 7][:30]
    crossed = np.stack([styles.seven_crossbar(d, rng) for d in sevens])
    middle = slice(11, 18)  # a crossbar adds ink in the middle rows, left and right of the stem
    widest = [(d[:, middle] > 76).sum(2).max(1) for d in (sevens, crossed)]  # per digit, its widest middle row
    assert widest[1].mean() > widest[0].mean() + 2
    ones = mnist_test.images[mnist_test.labels == 1][:30]
    flagged = np.stack([styles.one_flag_foot(d, rng) for d in ones])
    assert (flagged > 76).sum((1, 2)).mean() > (ones > 76).sum((1, 2)).mean()  # more ink: a flag, a foot
    assert (np.abs(flagged.astype(int) - ones).sum((1, 2)) > 0).all()


def test_a_bank_has_every_habit_and_its_labels(mnist_train):
    images, labels = styles.restyled_bank(mnist_train.images[:3000], mnist_train.labels[:3000], 5,
                                          np.random.default_rng(2))
    assert len(images) == 30 and sorted(set(labels.tolist())) == sorted(lab for lab, _ in styles.HABITS.values())
