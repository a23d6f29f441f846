"""A picture as a request brought it (`Picture`), and what the recogniser reads of it (`source`).

Apart from `bodies.py` (which reads requests) so that a preprocessing worker imports no web framework:
FastAPI alone took 1.2 of the 1.7 s a worker needed to start, and a dead worker's replacement waits for
that (docs/serve.md, "Faults").
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from digitrec.errors import DigitrecError
from digitrec.pictures.preprocess import Preprocessed
from digitrec.server.limits import ApiError, check_picture


@dataclass(frozen=True)
class Picture:
    name: str  # in answers and error messages: "x.png", "image", "items[3].image", "files[3] x.png"
    raw: bytes | None = None  # an encoded picture (PNG, JPEG, ...)
    pixels: np.ndarray | None = None  # (28, 28) uint8
    preprocess: bool = True
    field: str = ""  # the request field it came in: "file", "files[3]", "image", "items[3].pixels", "body"
    declared: str | None = None  # a raw body's format as its Content-Type says ("PNG"): the bytes must agree


@contextmanager
def checked(picture: Picture, max_pixels: int) -> Iterator[bytes]:
    """The picture's bytes, header-checked; reading errors inside the block become 400s."""
    assert picture.raw is not None
    check_picture(picture.raw, picture.name, max_pixels, picture.field, picture.declared)
    try:
        yield picture.raw
    except DigitrecError as exc:
        raise bad_image(picture, exc) from None


def bad_image(picture: Picture, exc: DigitrecError) -> ApiError:
    return ApiError(400, "bad_image", str(exc), field=picture.field or exc.field)


def source(picture: Picture, max_pixels: int) -> bytes | np.ndarray | Preprocessed:
    """What the recogniser reads for this picture: its header-checked bytes, its pixels, or, for
    `preprocess: false`, the pixels as the model's input itself."""
    if picture.pixels is None:
        assert picture.raw is not None
        check_picture(picture.raw, picture.name, max_pixels, picture.field, picture.declared)
        return picture.raw
    if picture.preprocess:
        return picture.pixels
    image = picture.pixels
    return Preprocessed(image=image, blank=not image.any(), inverted=False, thickened=False, stroke=0.0,
                        source=picture.name)
