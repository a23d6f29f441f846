"""Digits and letters written by fonts: legible, balanced, missing glyphs and unreadable fonts left out."""

from __future__ import annotations

import numpy as np

from digitrec.data.fonts import Font
from digitrec.models.modelfile import load_model, shipped_model_path
from digitrec.models.predict import predict_proba
from digitrec.synth import writers
from digitrec.synth.banks import font_bank
from digitrec.synth.nondigits import font_dir
from digitrec.util import NOT_A_DIGIT


def font(file: str, other_script: str | None = None) -> Font:
    return Font(file, font_dir() / file, "matplotlib", "test",
                font_dir() / other_script if other_script else None)


FONTS = [font("DejaVuSans.ttf", other_script="DejaVuSerif.ttf"), font("cmr10.ttf")]


def test_font_digits_are_balanced_and_legible_to_the_shipped_model():
    images, labels = writers.font_digits(60, FONTS, np.random.default_rng(0))
    assert images.shape == (60, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == [6] * 10
    assert (images.reshape(60, -1).max(1) > 150).all()  # every picture holds ink
    model, _ = load_model(shipped_model_path())
    read = predict_proba(model, images)[:, :10].argmax(1)
    assert (read == labels).mean() >= 0.8  # varied, but still the digit they show


def test_a_glyph_a_font_lacks_is_left_out():
    assert writers.glyphs(str(font_dir() / "DejaVuSans.ttf"), writers.CYRILLIC) == writers.CYRILLIC
    assert writers.glyphs(str(font_dir() / "cmr10.ttf"), writers.CYRILLIC) == ""  # no Cyrillic: no .notdef boxes
    assert writers.glyphs(str(font_dir() / "cmr10.ttf"), "7x") == "7x"


def test_an_unreadable_font_is_named_and_skipped(tmp_path):
    bad = tmp_path / "bad.ttf"
    bad.write_bytes(b"not a font")
    said: list[str] = []
    kept = writers.usable([Font("bad", bad, "x", "x"), *FONTS], writers.DIGITS, say=said.append)
    assert [f.name for f, _ in kept] == ["DejaVuSans.ttf", "cmr10.ttf"]
    assert len(said) == 1 and "bad" in said[0] and "skipped" in said[0]


def test_a_font_bank_holds_digits_and_its_share_of_letters_and_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    bank = font_bank(40, FONTS, seed=2, tag="t", letters=0.25)
    assert len(bank) == 40 and (bank.labels == NOT_A_DIGIT).sum() == 10
    digits = bank.labels[bank.labels != NOT_A_DIGIT]
    assert np.bincount(digits, minlength=10).tolist() == [3] * 10
    assert len(list((tmp_path / "digitrec" / "synthetic").glob("fonts-*.npz"))) == 2
    assert np.array_equal(font_bank(40, FONTS, seed=2, tag="t", letters=0.25).images, bank.images)  # read back
    letters = writers.font_letters(30, FONTS, np.random.default_rng(1), other_script=1.0)
    assert letters.shape == (30, 28, 28) and (letters.reshape(30, -1).max(1) > 150).all()
