"""Folders of people's own pictures (`--data DIR`): any size, format and polarity read through
`preprocess`, a cache that spares a second run the decoding, bad pictures skipped and named, bad
layouts refused in one line."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from digitrec.data import dataset as datamod
from digitrec.errors import DigitrecError
from digitrec.pictures import folders
from digitrec.pictures.folders import load_data, read_pictures
from digitrec.pictures.preprocess import preprocess
from digitrec.synth.variants import VARIANTS


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Every test gets an empty cache folder of its own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def save(picture, path):
    """A variant's picture (PIL image, encoded bytes or array) as the file `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(picture, bytes):
        path.write_bytes(picture)
    else:
        (picture if isinstance(picture, Image.Image) else Image.fromarray(picture)).save(path)
    return path


# variant → file suffix: sizes from 28×28 to 1200×1200, PNG/JPEG/BMP/WebP, ink dark or light, RGB, alpha
KINDS = {"mnist-28x28": ".png", "white-300": ".bmp", "large-1200": ".png", "off-centre": ".webp",
         "rgb-colour": ".png", "rgba-alpha": ".png", "jpeg-q50": ".jpg", "uneven-grey": ".png"}


def make_folder(root, mnist_test, per_digit=2):
    """root/<digit>/… with `per_digit` pictures of each digit, made in the KINDS' ways, in turn."""
    rng, kinds, made = np.random.default_rng(0), list(KINDS), []
    for i in range(10 * per_digit):
        kind, digit = kinds[i % len(kinds)], mnist_test.images[i]
        made.append(save(VARIANTS[kind](digit, rng), root / str(mnist_test.labels[i]) / f"{i:03d}{KINDS[kind]}"))
    return made


def test_any_size_format_and_polarity_reads_as_predict_reads_it(tmp_path, mnist_test):
    files = make_folder(tmp_path / "mine", mnist_test)
    got = read_pictures(tmp_path / "mine")
    assert not got.skipped and got.cached == 0 and len(got.labels) == 20
    for image, label, file in zip(got.images, got.labels, sorted(files, key=str)):  # digit folder, then name
        assert label == int(file.parent.name) and np.array_equal(image, preprocess(file).image)
    assert sorted(got.labels.tolist()) == sorted(mnist_test.labels[:20].tolist())


def test_a_second_run_reads_the_cache_and_only_changed_pictures_again(tmp_path, mnist_test, monkeypatch):
    files = make_folder(tmp_path / "mine", mnist_test, per_digit=1)
    first = read_pictures(tmp_path / "mine")
    calls = []
    real = folders.read_one
    monkeypatch.setattr(folders, "read_one", lambda path: calls.append(path) or real(path))
    second = read_pictures(tmp_path / "mine")
    assert second.cached == 10 and calls == []
    assert np.array_equal(second.images, first.images) and np.array_equal(second.labels, first.labels)
    os.utime(files[3], ns=(1, 1))  # an edited picture: another modification time
    assert read_pictures(tmp_path / "mine").cached == 9 and calls == [files[3]]


def test_a_damaged_or_stale_cache_is_ignored(tmp_path, mnist_test, monkeypatch):
    make_folder(tmp_path / "mine", mnist_test, per_digit=1)
    read_pictures(tmp_path / "mine")
    store = folders.PictureCache(tmp_path / "mine")
    assert store.path.is_file()
    store.path.write_bytes(b"not a zip")
    assert read_pictures(tmp_path / "mine").cached == 0  # and it is written anew
    monkeypatch.setattr(folders, "code_digest", lambda: "preprocess changed")
    assert read_pictures(tmp_path / "mine").cached == 0


def test_bad_pictures_are_skipped_with_their_reasons(tmp_path, mnist_test):
    make_folder(tmp_path / "mine", mnist_test)
    Image.new("L", (80, 80), 255).save(tmp_path / "mine" / "3" / "blank.png")
    (tmp_path / "mine" / "4" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (tmp_path / "mine" / "5" / "empty.jpg").write_bytes(b"")
    Image.fromarray(mnist_test.images[0]).save(tmp_path / "mine" / "loose.png")
    (tmp_path / "mine" / "6" / "more").mkdir()
    (tmp_path / "mine" / "7" / "notes.txt").write_text("not a picture, not counted")
    lines = []
    ds = load_data(tmp_path / "mine", log=lines.append, warn=lines.append)
    assert len(ds) == 20
    skipped = {line.split(": ")[1].rsplit("/", 1)[-1]: line for line in lines if line.startswith("digitrec: skipped")}
    assert set(skipped) == {"blank.png", "broken.png", "empty.jpg", "loose.png", "more"}
    assert "blank (no ink found)" in skipped["blank.png"]
    assert "not an image" in skipped["broken.png"] or "corrupt" in skipped["broken.png"]
    assert "not inside a digit folder" in skipped["loose.png"]
    digits = " ".join(str(d) for d in sorted(set(mnist_test.labels[:20].tolist())))
    assert lines[-1].endswith(f"20 pictures read (digits {digits}; 5 skipped, listed above; 0 from the cache)")
    assert sum(line.startswith("digitrec: skipped") for line in lines) == 5  # one line each


def test_train_and_test_sub_folders(tmp_path, mnist_test):
    make_folder(tmp_path / "d" / "train", mnist_test)
    save(mnist_test.images[0], tmp_path / "d" / "test" / str(mnist_test.labels[0]) / "a.png")
    assert len(load_data(tmp_path / "d", "train", log=lambda _: None)) == 20
    test = load_data(tmp_path / "d", "test", log=lambda _: None)
    assert len(test) == 1 and test.source == str(tmp_path / "d" / "test")


@pytest.mark.parametrize("layout, words", [
    ("nothing", ["no class sub-folders named 0-9"]),
    ("loose pictures", ["no class sub-folders named 0-9", "3 pictures lie in"]),
    ("a word for a digit", ["seven", "holds pictures but is not a digit folder"]),
    ("train without test", ["has a train/ folder but no test/ folder"]),
    ("empty digit folders", ["class folders hold no images"]),
    ("every picture blank", ["none of its 2 pictures can be used (2 skipped)"]),
])
def test_bad_layouts_are_one_line_errors(tmp_path, layout, words):
    root = tmp_path / "mine"
    root.mkdir()
    dot = np.zeros((28, 28), np.uint8)
    dot[10:18, 12:16] = 255
    if layout == "loose pictures":
        for i in range(3):
            save(dot, root / f"{i}.png")
    elif layout == "a word for a digit":
        save(dot, root / "0" / "a.png")
        save(dot, root / "seven" / "a.png")
    elif layout == "train without test":
        save(dot, root / "train" / "1" / "a.png")
    elif layout == "empty digit folders":
        for d in "0123456789":
            (root / d).mkdir()
    elif layout == "every picture blank":
        save(np.zeros((28, 28), np.uint8), root / "1" / "a.png")
        save(np.zeros((28, 28), np.uint8), root / "2" / "a.png")
    with pytest.raises(DigitrecError) as caught:
        load_data(root, "test" if layout == "train without test" else "train", log=lambda _: None)
    assert "\n" not in str(caught.value)
    for fragment in words:
        assert fragment in str(caught.value)


def test_the_data_room_alone_still_reads_28x28_class_folders(tmp_path, mnist_test):
    """Without the pictures room's reader, `data.load` keeps its strict MNIST-style reader."""
    save(mnist_test.images[0], tmp_path / "d" / "7" / "a.png")
    assert len(datamod.load(tmp_path / "d")) == 1
    save(VARIANTS["white-300"](mnist_test.images[1], None), tmp_path / "d" / "2" / "b.png")
    with pytest.raises(DigitrecError, match="expected 28x28"):
        datamod.load(tmp_path / "d")
