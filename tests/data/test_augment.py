"""Batch augmentation: shapes, ranges and the elastic field's blur."""

from __future__ import annotations

import torch


def test_augmentations_keep_shape_range_and_label_content(mnist_test):
    from digitrec.data.augment import get_augment, list_augments
    from digitrec.models.predict import to_input

    x = to_input(torch.from_numpy(mnist_test.images[:64]))
    for name in list_augments():
        fn = get_augment(name)
        if fn is None:
            continue
        torch.manual_seed(0)
        y = fn(x.clone())
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1.0001, name
        assert not torch.equal(y, x), name  # it does change the pictures
        assert (y.sum((1, 2, 3)) > 0.3 * x.sum((1, 2, 3))).all(), name  # and keeps most of the ink


def test_elastic_blur_is_two_clipped_box_blurs():
    """The elastic field's smoothing, done as two matrix products, must equal the 7×7 clipped
    average pooling it replaced (checked against torch's pooling)."""
    from digitrec.data.augment import _field_blur

    torch.manual_seed(0)
    x = torch.rand(3, 2, 28, 28)
    expected = x
    for _ in range(2):
        expected = torch.nn.functional.avg_pool2d(expected, 7, stride=1, padding=3, count_include_pad=False)
    m = _field_blur(7, torch.device("cpu"))  # the matrix elastic_field uses, not a rebuilt copy
    torch.testing.assert_close(m @ x @ m.T, expected, atol=1e-6, rtol=0)


def test_the_augmentations_a_line_model_may_take_work_on_lines_of_any_width():
    """A line of digits is 32 pixels tall and as wide as its digits: `any_size` augmentations keep its
    shape; the others turn 28x28 digits and are refused for line models (training.config)."""
    from digitrec.data.augment import get_augment, list_augments

    assert list_augments(any_size=True) == ["none", "stroke"] and "elastic" in list_augments()
    torch.manual_seed(0)
    x = torch.zeros(4, 1, 32, 90)
    x[:, :, 8:24, 10:80] = torch.rand(4, 1, 16, 70)
    y = get_augment("stroke")(x.clone())
    assert y.shape == x.shape and not torch.equal(y, x) and y.max() <= 1.0001
