"""Pictures of pages for the page tests of the CLI, the API and the web page, written as files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_pages(folder: Path, mnist_test, count: int = 2, seed: int = 0) -> list[Path]:
    """`count` pages like the benchmark's (synth.pages, its kinds in turn: plain, ruled, squared, comb, a
    photo as JPEG) from MNIST test digits, written in `folder`."""
    from digitrec.synth.pages import KINDS, draw_page

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        kind = KINDS[k % len(KINDS)]
        page = draw_page(kind, mnist_test.images, mnist_test.labels, rng)
        path = folder / f"page-{k}-{kind}.{'jpg' if isinstance(page.picture, bytes) else 'png'}"
        if isinstance(page.picture, bytes):
            path.write_bytes(page.picture)
        else:
            page.picture.save(path)
        paths.append(path)
    return paths


def blank_page(folder: Path) -> Path:
    """A page of paper with no ink: it holds no numbers."""
    path = folder / "blank.png"
    Image.new("RGB", (800, 600), (250, 250, 245)).save(path)
    return path


def sideways_photo(path: Path, folder: Path) -> Path:
    """`path` as a phone stores a photo taken turned: the pixels a quarter turn round, and the EXIF
    orientation tag (6: turn clockwise to show) that puts it upright again. A JPEG."""
    with Image.open(path) as upright:
        stored = upright.convert("RGB").rotate(90, expand=True)  # a quarter turn anticlockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    out = folder / f"{path.stem}-sideways.jpg"
    stored.save(out, format="JPEG", quality=95, exif=exif)
    return out
