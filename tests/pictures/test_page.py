"""Page finding: printed lines go and the handwriting stays; candidates are bounded; sizes are the picture's."""

from __future__ import annotations

import io

import numpy as np
from page_pictures import text_page
from PIL import Image, ImageDraw

from digitrec.pictures.page import MAX_CANDIDATES, PAGE_SIDE, candidates, page_ink
from digitrec.pictures.segment import line


def ruled_page_with_a_stroke() -> Image.Image:
    img = Image.new("L", (800, 600), 245)
    draw = ImageDraw.Draw(img)
    for y in range(100, 600, 60):
        draw.line([(0, y), (800, y)], fill=120, width=2)  # printed lines
    draw.line([(400, 130), (410, 200)], fill=10, width=7)  # a pen stroke crossing the line at y=160
    return img


def test_ruled_lines_are_removed_and_a_stroke_crossing_one_stays_whole():
    ink = page_ink(ruled_page_with_a_stroke())
    assert not ink.mask[:, :300].any(), "printed lines left as ink"
    stroke = ink.mask[120:210, 390:420]
    assert stroke[40].any(), "the stroke was cut where it crosses the line"
    from scipy import ndimage as ndi

    assert ndi.label(stroke, structure=np.ones((3, 3)))[1] == 1


def test_a_blank_page_has_no_candidates():
    ink = page_ink(Image.new("RGB", (1400, 1000), (250, 250, 248)))
    assert candidates(ink) == []


def test_a_page_of_text_gives_a_bounded_number_of_candidates():
    ink = page_ink(text_page())
    assert len(candidates(ink)) <= MAX_CANDIDATES


def test_a_12_megapixel_jpeg_is_worked_on_at_the_page_size_and_keeps_its_own_size():
    big = ruled_page_with_a_stroke().resize((4000, 3000))
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=85)
    ink = page_ink(buf.getvalue())
    assert (ink.width, ink.height) == (4000, 3000)
    assert max(ink.mask.shape) <= PAGE_SIDE
    assert abs(ink.scale - 4000 / ink.mask.shape[1]) < 1e-6


def test_a_cut_out_candidate_holds_only_its_own_ink():
    img = Image.new("L", (600, 300), 250)
    draw = ImageDraw.Draw(img)
    draw.line([(100, 100), (110, 170)], fill=0, width=8)
    draw.ellipse((300, 100, 350, 170), outline=0, width=8)
    found = candidates(page_ink(img))
    assert len(found) == 2
    for c in found:
        assert c.picture.shape[0] < 120 and c.picture.dtype == np.uint8
        assert len(line(c.picture).groups) == 1
