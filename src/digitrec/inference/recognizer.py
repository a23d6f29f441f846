"""The Python API: `Recognizer.load().predict(picture)` → the digit, its probability, all ten.

Every picture goes through `preprocess` (one digit) or `segment.line` (a number), then
through a backend from `backends.load_backend`: the same path as the CLI and the
server, so they cannot disagree.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch

from digitrec.errors import DigitrecError
from digitrec.inference.backends import Backend, load_backend
from digitrec.inference.numbers import (
    ONE_DIGIT_SURE,
    Box,
    digit_model_reads_shares,
    emissions,
    parts,
    share_probabilities,
)
from digitrec.models.calibration import DIGITS, NOT_A_DIGIT, not_digit_threshold
from digitrec.models.modelfile import load_model, shipped_model_path, shipped_number_reader_path
from digitrec.pictures.decode import ImageSource, describe
from digitrec.pictures.preprocess import Preprocessed, preprocess
from digitrec.pictures.segment import MAX_DIGITS, line, too_many_digits
from digitrec.util.files import atomic_write, check_writable_dir

if TYPE_CHECKING:
    from digitrec.inference.pages import PageReading

DEFAULT_THRESHOLD = 0.6  # answers whose probability is below this are marked unsure


@dataclass(kw_only=True)
class Prediction:
    """One picture's answer (keyword-only: its flags and probabilities share types). `digit` is None for
    a blank picture (nothing is guessed) and for a picture
    that holds no digit (`not_digit`, from a model trained to say so)."""

    digit: int | None
    probability: float  # of the answer: of `digit`, or of "not a digit"; 0 when blank
    probabilities: np.ndarray  # (10,) float32, digit 0 first; zeros when blank
    top3: list[tuple[int, float]]  # the three most probable digits
    unsure: bool  # probability below the recogniser's threshold
    blank: bool
    input: np.ndarray = field(repr=False)  # (28, 28) uint8: what the model saw
    source: str = ""
    not_digit: bool = False
    not_digit_probability: float = 0.0  # 0 for models without that answer
    box: Box | None = None  # where the digit is in a picture of a number (original pixels)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: everything but the input pixels."""
        out = {"source": self.source, "digit": self.digit, "probability": round(self.probability, 6),
               "unsure": self.unsure, "blank": self.blank, "not_digit": self.not_digit,
               "not_digit_probability": round(self.not_digit_probability, 6),
               "top3": [{"digit": d, "probability": round(p, 6)} for d, p in self.top3],
               "probabilities": [round(float(p), 6) for p in self.probabilities]}
        if self.box is not None:
            out["box"] = self.box.to_dict()
        return out


@dataclass(kw_only=True)
class NumberReading:
    """A multi-digit number read left to right; `text` is "" when the picture is blank."""

    text: str
    digits: list[Prediction]
    probability: float  # product of the digits' probabilities: the chance all are right
    unsure: bool  # some digit is unsure
    blank: bool
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "number": self.text, "probability": round(self.probability, 6),
                "unsure": self.unsure, "blank": self.blank,
                "digits": [{k: v for k, v in d.to_dict().items() if k != "source"} for d in self.digits]}


def check_threshold(threshold: float) -> float:
    """The one check of the `unsure` threshold (the CLI, the server's settings and the API use it)."""
    if not 0.0 <= threshold <= 1.0:
        raise DigitrecError(f"must be between 0 and 1, got {threshold}", field="threshold")
    return threshold


class Recognizer:
    """A model file opened with one backend, plus the confidence threshold for `unsure`.

    Every way in (the CLI, this Python API, the HTTP API and its drawing page) reads pictures through
    the methods below: `predict`/`predict_many` for digits, `read_number`/`read_numbers` for numbers.
    """

    def __init__(self, backend: Backend, threshold: float = DEFAULT_THRESHOLD, path: Path | None = None) -> None:
        self.backend = backend
        self.threshold = check_threshold(threshold)
        self.path = path  # the model file, when loaded from one (fine-tuning starts from it)
        self.not_digit_threshold = not_digit_threshold(backend.metadata)  # "not a digit" at or above this probability
        self._reader: torch.nn.Module | bool | None = None  # the line reader, loaded on the first number

    @classmethod
    def load(cls, path: str | Path | None = None, backend: str = "torch", threshold: float = DEFAULT_THRESHOLD,
             device: str = "auto") -> "Recognizer":
        """Open `path` (default: the model shipped with digitrec) with the named backend."""
        check_threshold(threshold)  # before the model loads
        if path is None:
            path = shipped_model_path()
            if not path.is_file():
                raise DigitrecError(f"{path}: the shipped model is missing from this installation; use --model FILE")
        return cls(load_backend(path, backend=backend, device=device), threshold, Path(path))

    @property
    def metadata(self) -> dict[str, Any]:
        return self.backend.metadata

    def finetune(self, pictures: str | Path | Sequence[ImageSource], labels: Sequence[int] | None = None,
                 out: str | Path = "runs/finetune", log: Callable[[str], None] = print,
                 **settings: Any) -> "Recognizer":
        """Teach this recogniser someone's own digits; returns a Recognizer on the fine-tuned model.

        `pictures` is a folder of digit folders (DIR/0 … DIR/9; `labels` None), or pictures (paths,
        bytes, PIL images, arrays) with their `labels`, which are saved as the model sees them in
        OUT/pictures/<digit>/ (the run's data, so `digitrec train --resume OUT` works). The run is
        `digitrec train --init THIS_MODEL --data ... --out OUT` (training.finetune); `settings` override
        its TrainConfig fields (e.g. epochs=5, measure_test=False)."""
        from digitrec.training.finetune import finetune_config
        from digitrec.training.run import train_run

        if self.path is None or self.backend.name != "torch":
            raise DigitrecError("fine-tuning needs a recogniser loaded from a .safetensors model file with the "
                                "torch backend", field="model")
        data = Path(pictures) if labels is None else Path(out) / "pictures"
        cfg = finetune_config(str(self.path), data=str(data), **settings)
        cfg.validate()
        if labels is not None:
            save_pictures(pictures, labels, data, log)
        result = train_run(cfg, out, log=log, progress=False)
        return Recognizer.load(result.model_path, threshold=self.threshold, device=cfg.device)

    def predict(self, image: ImageSource, name: str | None = None) -> Prediction:
        """One picture of one digit (path, bytes, PIL image or array) → its Prediction."""
        return self.predict_inputs([preprocess(image, name)])[0]

    def predict_batch(self, images: Sequence[ImageSource]) -> list[Prediction]:
        """Many pictures in one model call; the first bad picture raises its DigitrecError."""
        answers = self.predict_many(images)
        for answer in answers:
            if isinstance(answer, DigitrecError):
                raise answer
        return answers  # type: ignore[return-value]

    def predict_many(self, images: Sequence[ImageSource | Preprocessed],
                     names: Sequence[str | None] | None = None) -> list[Prediction | DigitrecError]:
        """Many pictures in one model call, a bad one answered by its error in its place, so a caller
        can report it and carry on (the CLI with many files, the server's batch route). A
        `Preprocessed` input (pixels already MNIST-style) goes to the model as it is."""
        names = list(names) if names is not None else [None] * len(images)
        prepared: list[Preprocessed | DigitrecError] = []
        for image, name in zip(images, names):
            try:
                prepared.append(image if isinstance(image, Preprocessed) else preprocess(image, name))
            except DigitrecError as exc:
                prepared.append(exc)
        good = [p for p in prepared if isinstance(p, Preprocessed)]
        answers = iter(self.predict_inputs(good))
        return [next(answers) if isinstance(p, Preprocessed) else p for p in prepared]

    def predict_inputs(self, inputs: Sequence[Preprocessed]) -> list[Prediction]:
        """Already preprocessed digits → Predictions, blanks answered without the model."""
        todo = [i for i, p in enumerate(inputs) if not p.blank]
        probs = self.probabilities(np.stack([inputs[i].image for i in todo])) if todo else np.zeros((0, 10))
        rows = dict(zip(todo, probs))
        return [self._answer(p, rows.get(i)) for i, p in enumerate(inputs)]

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) uint8 MNIST-style digits, no preprocessing (Kaggle CSV rows) → (N, 10)."""
        return np.asarray(self.backend.probabilities(np.ascontiguousarray(images, dtype=np.uint8)), np.float32)

    def read_numbers(self, images: Sequence[ImageSource],
                     names: Sequence[str | None] | None = None) -> list[NumberReading | DigitrecError]:
        """Many pictures of numbers, each read as `read_number` reads it alone (so every way in gives
        the same answer), a bad one answered by its error in its place."""
        names = list(names) if names is not None else [None] * len(images)
        out: list[NumberReading | DigitrecError] = []
        for image, name in zip(images, names):
            try:
                out.append(self.read_number(image, name))
            except DigitrecError as exc:
                out.append(exc)
        return out

    def read_number(self, image: ImageSource, name: str | None = None) -> NumberReading:
        """A picture of a number such as 2026 → its digits, left to right, each with its box; digits that
        touch or overlap included (inference.numbers: the line reader places them, the digit model reads
        those that stand alone)."""
        source = name or describe(image)
        ln = line(image, name)
        if ln.blank or not ln.groups:
            return number_from([], source)
        reader = self.line_reader()
        read = emissions(reader, ln) if reader is not None else []
        pieces = parts(ln, read, lambda group: self._one_digit(ln, group))
        if len(pieces) > MAX_DIGITS:
            raise too_many_digits(source)
        images = np.stack([ln.digit(p.group, p.left, p.right) for p in pieces])
        # the digit model reads, in one call, every digit that stands alone (and the shares, if they need it)
        ask = [i for i, p in enumerate(pieces) if p.emission is None or digit_model_reads_shares()]
        probs = dict(zip(ask, self.probabilities(images[ask]))) if ask else {}
        digits = []
        for i, p in enumerate(pieces):
            pre = Preprocessed(image=images[i], blank=False, inverted=False, thickened=False, stroke=0.0, source=source)
            read = probs[i] if p.emission is None else share_probabilities(p.emission, probs.get(i))
            answer = self._answer(pre, read)
            answer.box = Box(*ln.box(p.group, p.left, p.right))
            digits.append(answer)
        return number_from(digits, source)

    def read_page(self, image: ImageSource, name: str | None = None) -> "PageReading":
        """A photographed page → every handwritten number on it, in reading order, each with its box and its
        digits' boxes in the picture's own pixels (inference.pages); no numbers → `numbers == []`."""
        from digitrec.inference.pages import read_page

        return read_page(self, image, name)

    def _one_digit(self, ln, group) -> bool:
        """Whether the digit model reads a whole group as one digit, surely (inference.numbers.ONE_DIGIT_SURE)."""
        return float(self.probabilities(ln.digit(group)[None])[0][:DIGITS].max()) >= ONE_DIGIT_SURE

    def line_reader(self) -> torch.nn.Module | None:
        """The shipped line reader (weights/numbers.safetensors), loaded on the first number read; None
        when it is missing (then every group of ink is read as one digit)."""
        if self._reader is None:
            path = shipped_number_reader_path()
            self._reader = load_model(path)[0] if path.is_file() else False
        return self._reader or None

    def _answer(self, pre: Preprocessed, probs: np.ndarray | None) -> Prediction:
        if probs is None:
            return Prediction(digit=None, probability=0.0, probabilities=np.zeros(10, np.float32), top3=[],
                              unsure=False, blank=True, input=pre.image, source=pre.source)
        digits = probs[:DIGITS].astype(np.float32)
        p_not = float(probs[NOT_A_DIGIT]) if len(probs) > NOT_A_DIGIT else 0.0
        order = np.argsort(digits)[::-1]
        top3 = [(int(d), float(digits[d])) for d in order[:3]]
        if p_not >= self.not_digit_threshold:
            return Prediction(digit=None, probability=p_not, probabilities=digits, top3=top3,
                              unsure=p_not < self.threshold, blank=False, input=pre.image, source=pre.source,
                              not_digit=True, not_digit_probability=p_not)
        digit, p = top3[0]
        return Prediction(digit=digit, probability=p, probabilities=digits, top3=top3, unsure=p < self.threshold,
                          blank=False, input=pre.image, source=pre.source, not_digit_probability=p_not)


def save_pictures(pictures: Sequence[ImageSource], labels: Sequence[int], folder: Path,
                  log: Callable[[str], None] = print) -> int:
    """Each picture, preprocessed (what the model sees), as folder/<label>/<i>.png: a folder of digit
    folders for `--data`. Unreadable and blank pictures are skipped and named; returns how many were saved."""
    from PIL import Image

    if len(pictures) != len(labels):
        raise DigitrecError(f"{len(pictures)} pictures but {len(labels)} labels", field="labels")
    if any(not isinstance(y, (int, np.integer)) or not 0 <= y < DIGITS for y in labels):
        raise DigitrecError("every label must be a digit 0-9", field="labels")
    if folder.is_dir() and any(folder.iterdir()):
        raise DigitrecError(f"{folder}: already holds pictures of an earlier run; choose another out folder",
                            field="out")
    check_writable_dir(folder, "out")
    saved = 0
    for i, (picture, label) in enumerate(zip(pictures, labels)):
        try:
            pre = preprocess(picture, f"picture {i}" if not isinstance(picture, (str, Path)) else None)
        except DigitrecError as exc:
            log(f"digitrec: skipped {exc}")
            continue
        if pre.blank:
            log(f"digitrec: skipped {pre.source}: blank (no ink found)")
            continue
        buf = io.BytesIO()
        Image.fromarray(pre.image).save(buf, format="PNG")
        atomic_write(folder / str(int(label)) / f"{i:05d}.png", buf.getvalue())
        saved += 1
    return saved


def number_from(digits: list[Prediction], source: str) -> NumberReading:
    found = [d for d in digits if not d.blank]
    if not found:
        return NumberReading(text="", digits=[], probability=0.0, unsure=False, blank=True, source=source)
    text = "".join("?" if d.not_digit else str(d.digit) for d in found)  # a letter in a number is shown, not dropped
    probability = float(np.prod([0.0 if d.not_digit else d.probability for d in found]))
    unsure = any(d.unsure or d.not_digit for d in found)
    return NumberReading(text=text, digits=found, probability=probability, unsure=unsure, blank=False, source=source)
