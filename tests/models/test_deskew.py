"""The deskew layer (`best-deskew` recipe): slanted digits come out upright, upright ones unchanged."""

from __future__ import annotations

import numpy as np
import torch

from digitrec.models import create_model
from digitrec.models.deskew import Deskew


def row_centres(x: torch.Tensor) -> torch.Tensor:
    """Ink centre (column) of each row that has ink, in pixels."""
    img = x[0, 0]
    rows = img.sum(1) > 0.5
    cols = torch.arange(img.shape[1], dtype=torch.float32)
    return (img[rows] * cols).sum(1) / img[rows].sum(1)


def test_a_slanted_stroke_comes_out_upright():
    x = torch.zeros(1, 1, 28, 28)
    for y in range(5, 23):  # a stroke leaning right by half a pixel per row
        c = round(13.5 + 0.5 * (y - 13.5))
        x[0, 0, y, c - 1:c + 1] = 1.0
    assert row_centres(x).std() > 2.5
    out = Deskew()(x)
    assert row_centres(out).std() < 0.5
    assert abs(row_centres(out).mean() - 13.5) < 0.5  # and centred
    assert abs(out.sum() - x.sum()) / x.sum() < 0.05  # no ink lost off the edges


def test_an_upright_centred_digit_is_unchanged_and_a_blank_stays_blank():
    x = torch.zeros(2, 1, 28, 28)
    x[0, 0, 6:22, 12:16] = 1.0  # symmetric bar centred on the picture: no slant, no shift
    out = Deskew()(x)
    torch.testing.assert_close(out[0], x[0], atol=1e-5, rtol=0)
    assert torch.equal(out[1], torch.zeros(1, 28, 28))


def test_real_digits_lose_their_slant(mnist_test):
    x = torch.from_numpy(mnist_test.images[:500]).float().unsqueeze(1) / 255
    layer = Deskew()
    before = layer.slant(x)[2].abs().mean()
    after = layer.slant(layer(x))[2].abs().mean()
    assert before > 0.15 and after < 0.03


def test_deskewing_model_reads_straightened_digits_and_learns():
    torch.manual_seed(0)
    model = create_model("bn-conv6-w32", deskew=True)
    assert isinstance(model[0], Deskew) and model.arch_kwargs == {"deskew": True}
    x = torch.rand(4, 1, 28, 28)
    out = model(x)
    torch.nn.functional.cross_entropy(out, torch.arange(4)).backward()
    assert out.shape == (4, 10) and all(torch.isfinite(p.grad).all() for p in model.parameters())
    plain = model[1:]  # the same layers and weights without the deskewing
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert not np.allclose(model(x).numpy(), plain(x).numpy())


def test_a_cropping_deskew_returns_the_centre_of_the_full_straightened_image(mnist_test):
    """The fast recipe's model asks Deskew for only the central 20×20 pixels it reads."""
    x = torch.from_numpy(mnist_test.images[:64]).float().unsqueeze(1) / 255
    full, centre = Deskew()(x), Deskew(out=20)(x)
    assert centre.shape == (64, 1, 20, 20)
    torch.testing.assert_close(centre, full[..., 4:24, 4:24], atol=1e-6, rtol=0)


def test_bfloat16_autocast_does_not_change_the_straightening(mnist_test):
    x = torch.from_numpy(mnist_test.images[:64]).float().unsqueeze(1) / 255
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = Deskew()(x)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, Deskew()(x), atol=0, rtol=0)
