"""Reading a whole number: where the line reader's digits go, and how a group of several is split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digitrec.inference.numbers import Emission, capacity, digit_probabilities, emissions, parts
from digitrec.models.networks import BLANK, LINE_STRIDE
from digitrec.pictures.lines import SIDE_PAD
from digitrec.pictures.segment import line
from digitrec.synth.variants import number_picture


def pick(mnist_test, digits: str) -> list[np.ndarray]:
    return [mnist_test.images[np.flatnonzero(mnist_test.labels == int(d))[0]] for d in digits]


class Scripted(torch.nn.Module):
    """A stand-in line reader: reads `digits` at the given input columns, blank everywhere else."""

    def __init__(self, reads: dict[int, int]):
        super().__init__()
        self.reads = reads

    def forward(self, x):
        frames = x.shape[-1] // LINE_STRIDE
        logits = torch.full((1, frames, BLANK + 1), -10.0)
        logits[0, :, BLANK] = 10.0
        for column, digit in self.reads.items():
            logits[0, column // LINE_STRIDE, BLANK], logits[0, column // LINE_STRIDE, digit] = -10.0, 10.0
        return logits


def test_emissions_are_read_left_to_right_and_placed_on_the_line(mnist_test):
    ln = line(number_picture(pick(mnist_test, "47"), [-2]))  # touching: one group
    x, scale = ln.reader_input()
    width = x.shape[1]
    read = emissions(Scripted({width // 4: 4, 3 * width // 4: 7}), ln)
    assert [int(e.probs.argmax()) for e in read] == [4, 7]
    assert read[0].column < read[1].column
    for e, at in zip(read, (width // 4, 3 * width // 4)):  # the frame's centre, back in the line's columns
        frame = at // LINE_STRIDE
        assert e.column == pytest.approx(((frame + 0.5) * LINE_STRIDE - SIDE_PAD) / scale)


def test_a_group_read_as_two_digits_is_split_between_them(mnist_test):
    ln = line(number_picture(pick(mnist_test, "473"), [-2, 12]))  # "47" touching, then a 3 apart
    assert len(ln.groups) == 2
    first, second = ln.groups
    at = [first.left + (first.right - first.left) * f for f in (0.25, 0.75)] + [(second.left + second.right) / 2]
    read = [Emission(np.eye(BLANK + 1)[d], c) for d, c in zip((4, 7, 3), at)]
    pieces = parts(ln, read)
    assert len(pieces) == 3 and pieces[0].right == pieces[1].left == int(round((at[0] + at[1]) / 2))
    assert pieces[0].emission is read[0] and pieces[1].emission is read[1]
    assert pieces[2].emission is None and (pieces[2].left, pieces[2].right) == (second.left, second.right)
    assert parts(ln, [])[0].emission is None and len(parts(ln, [])) == 2  # no reader: a group is a digit


def test_a_narrow_single_stroke_is_one_digit_however_often_the_line_reader_reads_it(mnist_test):
    ln = line(number_picture(pick(mnist_test, "713"), [10, 10]))  # a 7, a 1 and a 3 apart
    one = ln.groups[1]
    assert capacity(one, ln.ink_height()) == 1 and capacity(ln.groups[0], ln.ink_height()) >= 2
    at = [one.left + 1, one.right - 1]  # the 1 read twice ("11"), the second time less surely
    read = [Emission(np.eye(BLANK + 1)[1] * p, c) for p, c in zip((0.9, 0.6), at)]
    pieces = parts(ln, read)
    assert len(pieces) == 3 and pieces[1].group is one and pieces[1].emission is None  # read once, by the digit model


def test_a_group_read_as_more_digits_than_its_ink_can_hold_keeps_the_surest(mnist_test):
    ln = line(number_picture(pick(mnist_test, "47"), [-2]))  # touching: one group, room for 2 or 3 digits
    group, height = ln.groups[0], ln.ink_height()
    most = capacity(group, height)
    at = np.linspace(group.left, group.right, 2 * most + 3)[1:-1]
    sure = np.linspace(0.5, 0.99, len(at))[::-1]  # the leftmost surest
    read = [Emission(np.eye(BLANK + 1)[4] * p, c) for p, c in zip(sure, at)]
    pieces = parts(ln, read)
    assert len(pieces) == most and [p.emission for p in pieces] == read[:most]


def test_a_group_the_digit_model_reads_as_one_digit_is_not_split(mnist_test):
    ln = line(number_picture(pick(mnist_test, "47"), [-2]))
    group = ln.groups[0]
    at = [group.left + (group.right - group.left) * f for f in (0.25, 0.75)]
    read = [Emission(np.eye(BLANK + 1)[d], c) for d, c in zip((4, 7), at)]
    asked = []
    assert len(parts(ln, read, lambda g: asked.append(g) or False)) == 2 and asked == [group]
    whole = parts(ln, read, lambda g: True)
    assert len(whole) == 1 and whole[0].emission is None  # read once, by the digit model


def test_the_line_readers_probabilities_leave_blank_out():
    probs = np.array([0.1] * 10 + [0.5])
    p = digit_probabilities(Emission(probs, 0.0))
    assert p.shape == (10,) and p.sum() == pytest.approx(1.0) and p[0] == pytest.approx(0.1)


@pytest.mark.parametrize("mode", ["line", "digit", "both"])
def test_a_share_is_read_as_shares_read_by_says_and_never_declined(mode, monkeypatch):
    """A share the line reader split: its digit as SHARES_READ_BY says; the digit model's 'not a digit' (which
    a share, holding a piece of its neighbour, often earns) is left out."""
    from digitrec.inference import numbers

    monkeypatch.setattr(numbers, "SHARES_READ_BY", mode)
    line = Emission(np.eye(BLANK + 1)[3] * 0.9 + 0.01, 0.0)  # the line reader: a 3
    digit_model = np.full(11, 0.01)
    digit_model[3], digit_model[8] = 0.3, 0.6  # the digit model: an 8 or a 3 ...
    digit_model[10] = 0.9  # ... and surely "not a digit"
    p = numbers.share_probabilities(line, digit_model / digit_model.sum())
    assert p.shape == (10,) and p.sum() == pytest.approx(1.0, abs=1e-5)
    assert int(p.argmax()) == {"line": 3, "digit": 8, "both": 3}[mode]
