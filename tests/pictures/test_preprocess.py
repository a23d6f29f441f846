"""preprocess(): pictures of real MNIST test digits made the way people make them → MNIST-style input.

The accuracy checks use the shipped model (in the package), on a fixed
sample of test digits for every variant in `digitrec.synthetic.VARIANTS`.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from digitrec.errors import DigitrecError
from digitrec.pictures.preprocess import BOX, SIDE, preprocess
from digitrec.synth.variants import VARIANTS, white_300

SAMPLE = np.arange(0, 10_000, 250)  # 40 digits spread over the test set


@pytest.fixture(scope="module")
def recognizer():
    from digitrec import Recognizer

    return Recognizer.load(device="cpu")


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_is_recognised(variant, mnist_test, recognizer):
    rng = np.random.default_rng(0)
    pictures = [VARIANTS[variant](mnist_test.images[i], rng) for i in SAMPLE]
    answers = [p.digit for p in recognizer.predict_batch(pictures)]
    correct = int(np.sum(np.array(answers) == mnist_test.labels[SAMPLE]))
    assert correct >= len(SAMPLE) - 2, f"{variant}: {correct}/{len(SAMPLE)} right"


def test_output_is_mnist_style(mnist_test):
    out = preprocess(white_300(mnist_test.images[0], None))
    assert out.image.shape == (SIDE, SIDE) and out.image.dtype == np.uint8
    assert out.inverted and not out.blank and out.image.max() == 255
    rows, cols = np.flatnonzero(out.image.any(1)), np.flatnonzero(out.image.any(0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (BOX, BOX + 1)  # fitted into 20×20
    ys, xs = np.mgrid[0:SIDE, 0:SIDE]
    mass = out.image.astype(float)
    assert abs((ys * mass).sum() / mass.sum() - 14) < 0.6  # centred by mass at (14, 14)
    assert abs((xs * mass).sum() / mass.sum() - 14) < 0.6


def _same_digit(a: np.ndarray, b: np.ndarray, shift: int = 2) -> bool:
    """Pixel correlation above 0.9, allowing for a placement that differs by `shift` pixels."""
    best = max(np.corrcoef(np.roll(a, (dy, dx), (0, 1)).ravel().astype(float), b.ravel().astype(float))[0, 1]
               for dy in range(-shift, shift + 1) for dx in range(-shift, shift + 1))
    return float(best) > 0.9


def test_mnist_digit_is_nearly_unchanged(mnist_test):
    for digit in mnist_test.images[:20]:
        out = preprocess(digit)
        assert not out.inverted and _same_digit(out.image, digit)


@pytest.mark.parametrize("mode", ["L", "RGB", "P", "LA", "I;16", "1", "CMYK", "F"])
def test_every_mode_gives_the_same_digit(mode, mnist_test):
    picture = white_300(mnist_test.images[3], None)
    reference = preprocess(picture).image
    if mode == "I;16":
        converted = picture.convert("I").point(lambda v: v * 257).convert("I;16")
    else:
        converted = picture.convert(mode)
    assert _same_digit(preprocess(converted).image, reference)


def test_strokes_only_in_alpha_white_or_black(mnist_test):
    digit = mnist_test.images[5]
    reference = preprocess(digit).image
    for colour in (0, 255):  # black strokes or white strokes, on a fully transparent page
        rgba = np.full((280, 280, 4), colour, np.uint8)
        rgba[..., 3] = np.asarray(Image.fromarray(digit).resize((280, 280)))
        assert _same_digit(preprocess(Image.fromarray(rgba, "RGBA")).image, reference)


def test_exif_rotation_is_applied(mnist_test):
    picture = white_300(mnist_test.images[7], None)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buf = io.BytesIO()
    picture.transpose(Image.Transpose.ROTATE_90).save(buf, format="PNG", exif=exif)
    assert _same_digit(preprocess(buf.getvalue()).image, preprocess(picture).image)


def test_thin_strokes_are_thickened(mnist_test):
    thin = VARIANTS["thin-strokes"](mnist_test.images[0], None)
    out = preprocess(thin)
    assert out.thickened and out.stroke < 0.05
    assert not preprocess(white_300(mnist_test.images[0], None)).thickened
    assert (out.image > 127).sum() > 0.6 * (mnist_test.images[0] > 127).sum()  # about MNIST's ink


@pytest.mark.parametrize("picture", [
    Image.new("L", (300, 300), 255), Image.new("L", (300, 300), 0), Image.new("RGB", (64, 48), (120, 130, 90)),
    Image.new("RGBA", (100, 100), (0, 0, 0, 0)),
    Image.fromarray((np.random.default_rng(0).normal(235, 3, (200, 200))).clip(0, 255).astype(np.uint8)),
])
def test_blank_pictures_are_blank(picture):
    out = preprocess(picture)
    assert out.blank and not out.image.any()


def test_arrays_of_any_dtype(mnist_test):
    digit = mnist_test.images[1]
    reference = preprocess(digit).image
    assert _same_digit(preprocess(digit / 255.0).image, reference)
    assert _same_digit(preprocess(digit > 127).image, reference)
    assert _same_digit(preprocess(np.stack([255 - digit] * 3, axis=2)).image, reference)
    with pytest.raises(DigitrecError, match="array"):
        preprocess(np.zeros((4, 4, 7)))


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height pixels (a decompression bomb's first bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"these are not the pixels you are looking for", "not an image"),
    (png_header(50_000, 50_000), "too large"),
    (png_header(8_000, 6_000), "too large"),
], ids=["zero-bytes", "text", "bomb-50000x50000", "48-megapixels"])
def test_bad_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(DigitrecError, match=message) as err:
        preprocess(path)
    assert str(path) in str(err.value)


def test_truncated_file(tmp_path, mnist_test):
    buf = io.BytesIO()
    white_300(mnist_test.images[0], None).save(buf, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(DigitrecError, match="cut.png: truncated or corrupt"):
        preprocess(path)


def test_an_mnist_style_picture_is_passed_on_as_it_is(mnist_test):
    """MNIST test digits saved as PNG (either polarity) reach the model exactly as `evaluate` reads them."""
    import io

    for i in range(200):
        digit = mnist_test.images[i]
        buf = io.BytesIO()
        Image.fromarray(digit if i % 2 else 255 - digit).save(buf, format="PNG")
        out = preprocess(buf.getvalue())
        assert np.array_equal(out.image, digit) and out.inverted == (i % 2 == 0) and not out.blank


def test_a_28_pixel_picture_that_is_not_mnist_style_is_still_preprocessed(mnist_test):
    digit = mnist_test.images[0]
    shifted = np.roll(digit, (-5, 6), axis=(0, 1))  # off-centre: the box no longer centred by mass
    small = np.zeros((28, 28), np.uint8)
    small[9:19, 9:19] = np.asarray(Image.fromarray(digit).resize((10, 10)))  # half size
    for picture in (shifted, small):
        out = preprocess(picture).image
        rows = np.flatnonzero(out.any(1))
        assert rows[-1] - rows[0] + 1 >= 19  # refitted into MNIST's 20-pixel box


# --- the steps, one by one, on pictures whose answers are known ---


def test_histogram_helpers_by_hand():
    from digitrec.pictures import preprocess as pp

    hist = np.zeros(256, int)
    hist[20], hist[200] = 900, 100  # paper at 20, ink at 200
    assert 20 / 255 <= pp.otsu(hist) < 200 / 255
    assert pp._peak(hist) == pytest.approx(200 / 255)  # the level at least MIN_INK_PIXELS reach
    hist[250] = pp.MIN_INK_PIXELS - 1  # a few hot pixels do not move the peak
    assert pp._peak(hist) == pytest.approx(200 / 255)
    ink = np.zeros(256, int)
    ink[100], ink[150], ink[160] = 10, 10, 30
    assert pp._median_above(ink, 120 / 255) == pytest.approx(160 / 255)  # the median of the ink above 120
    assert pp._median_above(ink, 200 / 255) == pytest.approx(200 / 255)  # nothing above: the threshold


def test_ink_is_found_in_either_polarity_and_specks_dropped():
    from digitrec.pictures import preprocess as pp

    paper = np.full((60, 60), 0.9, np.float32)
    paper[10:50, 28:33] = 0.1  # a dark stroke
    paper[2, 2] = 0.1  # a speck of dust
    ink = pp.ink_map(paper, "dark")
    assert ink.inverted and not ink.blank and ink.mask[10:50, 28:33].all() and not ink.mask[2, 2]
    assert ink.mask.sum() == 40 * 5 and 0.2 <= ink.threshold < 0.9
    assert np.median(ink.ink[ink.mask]) == pytest.approx(1.0, abs=0.05)  # 1.0 = a typical stroke
    light = pp.ink_map(1 - paper, "light")
    assert not light.inverted and np.array_equal(light.mask, ink.mask)
    assert pp.ink_map(np.full((60, 60), 0.5, np.float32), "grey").blank


def test_an_opaque_rgba_picture_is_read_as_its_rgb():
    """A canvas's PNG is RGBA with every pixel opaque: its grey levels are Pillow's integer ones (as for
    RGB), which the drawing page's preprocess.js reproduces exactly, and its digit is the RGB picture's."""
    from PIL import ImageDraw

    from digitrec.pictures.decode import gray_levels

    rgb = Image.new("RGB", (140, 140), "white")
    ImageDraw.Draw(rgb).line([(40, 30), (100, 30), (60, 115)], fill=(17, 17, 17), width=9, joint="curve")
    rgb = rgb.resize((280, 280), Image.Resampling.BILINEAR)  # grey anti-aliased edges
    gray, levels = gray_levels(rgb.convert("RGBA"))
    assert levels is not None and np.array_equal(levels, np.asarray(rgb.convert("L")))
    assert np.array_equal(gray, levels.astype(np.float32) / 255)
    assert np.array_equal(preprocess(rgb.convert("RGBA")).image, preprocess(rgb).image)
    see_through = np.asarray(rgb.convert("RGBA")).copy()
    see_through[..., 3] = 128
    assert gray_levels(Image.fromarray(see_through, "RGBA"))[1] is None  # transparency: flattened as before
