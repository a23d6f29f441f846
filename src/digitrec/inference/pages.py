"""Reading a whole page: every handwritten number on it, where it stands, in reading order.

`pictures.page` finds the candidates (the page's ink without its printed lines, grouped into what may
be numbers); each is read by the number reader (`Recognizer.read_number`), as a number someone cut out
would be. A candidate is reported as a number only when every digit is read as a digit (the digit
model's not-a-digit answer turns words, ticks and signatures away, asked of every digit: see
`not_digit_share`) and the number's probability is at least MIN_PROBABILITY. Both settings were chosen on
validation pages (docs/pages.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from digitrec.errors import DigitrecError
from digitrec.inference.numbers import Box
from digitrec.models.calibration import NOT_A_DIGIT
from digitrec.pictures.decode import ImageSource, describe
from digitrec.pictures.page import Candidate, candidates, page_ink
from digitrec.pictures.preprocess import preprocess


class NumberReader(Protocol):
    """What reads each candidate: `Recognizer` (which calls in here, so this module cannot import it)."""

    def read_number(self, image: ImageSource, name: str | None = None) -> Any: ...

    def probabilities(self, images: np.ndarray) -> np.ndarray: ...


MIN_PROBABILITY = 0.4  # candidates read less surely than this are not reported
NARROW = 1.0  # a candidate narrower than this × the handwriting's height is one character wide
MAX_NOT_DIGIT = 0.4  # nor those whose digits the digit model calls "not a digit" this surely, on average
ROW = 0.5  # numbers whose centres are within this × the taller one's height share a row of the page


@dataclass
class PageNumber:
    """One number found on the page: its reading (digits with their boxes) and its box, in the picture's
    own pixels (after EXIF rotation)."""

    reading: Any  # recognizer.NumberReading: text, digits (Predictions with their boxes), probability, unsure
    box: Box

    def to_dict(self) -> dict[str, Any]:
        digits = self.reading.to_dict()["digits"]
        return {"number": self.reading.text, "box": self.box.to_dict(),
                "probability": round(self.reading.probability, 6), "unsure": self.reading.unsure,
                "digits": digits}


@dataclass
class PageReading:
    source: str
    width: int  # of the picture as given (after EXIF rotation)
    height: int
    numbers: list[PageNumber] = field(default_factory=list)  # top to bottom, then left to right

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "width": self.width, "height": self.height,
                "numbers": [n.to_dict() for n in self.numbers]}


def read_page(recognizer: NumberReader, image: ImageSource, name: str | None = None) -> PageReading:
    """Every handwritten number on the picture (see the module's docstring); [] when there is none."""
    source = name or describe(image)
    page = page_ink(image, source)
    found = []
    for candidate in candidates(page):
        try:
            reading = recognizer.read_number(candidate.picture, source)
        except DigitrecError:  # longer than any number the reader reads: a line of text, a scribble
            continue
        if is_number(reading) and not_digit_share(recognizer, reading) < MAX_NOT_DIGIT \
                and not _one_mark(recognizer, reading, candidate):
            found.append(PageNumber(_placed(reading, candidate), Box(*candidate.box)))
    return PageReading(source, page.width, page.height, reading_order(found))


def is_number(reading: Any) -> bool:
    """A reading is a number when it has digits, none of them is "not a digit", and it is sure enough."""
    return (not reading.blank and bool(reading.digits) and not any(d.not_digit for d in reading.digits)
            and reading.probability >= MIN_PROBABILITY)


def not_digit_share(recognizer: NumberReader, reading: Any) -> float:
    """The digit model's mean "not a digit" probability over the reading's digits, each read alone (the line
    reader's shares of touching digits included, which `read_number` never lets say "not a digit"): a word whose
    letters touch is split into "digits" by the line reader, but the digit model sees letters. 0 for a model
    without that answer."""
    probs = recognizer.probabilities(np.stack([d.input for d in reading.digits]))
    return float(probs[:, NOT_A_DIGIT].mean()) if probs.shape[1] > NOT_A_DIGIT else 0.0


def _one_mark(recognizer: NumberReader, reading: Any, candidate: Candidate) -> bool:
    """Whether a candidate read as several digits, but no wider than one character (NARROW × the
    handwriting's height), is one mark: the digit model, reading it whole as one picture, says "not a digit"
    (a cross is read as 76 by the line reader; two digits that narrow are rare)."""
    if len(reading.digits) < 2 or candidate.width >= NARROW:
        return False
    whole = recognizer.probabilities(preprocess(candidate.picture).image[None])[0]
    return len(whole) > NOT_A_DIGIT and float(whole[NOT_A_DIGIT]) >= 0.5


def _placed(reading: Any, candidate: Candidate) -> Any:
    """The reading with each digit's box moved from the cut-out's pixels to the picture's."""
    for digit in reading.digits:
        digit.box = _to_page(digit, candidate)
    return reading


def _to_page(digit: Any, c: Candidate) -> Box | None:
    if digit.box is None:
        return None
    b, s = digit.box, c.scale
    return Box(int((c.x + b.x) * s), int((c.y + b.y) * s), max(1, round(b.width * s)), max(1, round(b.height * s)))


def reading_order(numbers: list[PageNumber]) -> list[PageNumber]:
    """Top to bottom by rows (numbers whose centres are close in height share a row), left to right in a row."""
    rows: list[list[PageNumber]] = []
    for n in sorted(numbers, key=lambda n: n.box.y + n.box.height / 2):
        centre = n.box.y + n.box.height / 2
        if rows:
            last = rows[-1][0].box
            if abs(centre - (last.y + last.height / 2)) <= ROW * max(last.height, n.box.height):
                rows[-1].append(n)
                continue
        rows.append([n])
    return [n for row in rows for n in sorted(row, key=lambda n: n.box.x)]
