"""`digitrec predict FILES/FOLDERS...`: the digit in each picture (or the number, with --number; every
number on a page, with --page: cli/pages.py).

A bad file gets one line on stderr and the rest are still processed; the exit
code is 1 when some file failed, 2 for a usage error (as for every command).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from digitrec.data.formats import IMAGE_SUFFIXES
from digitrec.errors import DigitrecError
from digitrec.util.files import atomic_write, check_writable_dir, check_writable_file

EXTRA_SUFFIXES = {".gif", ".tga", ".ico", ".jp2", ".heic"}  # also tried when found in a folder


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="recognise the digit (or number) in pictures, files or folders")
    p.add_argument("paths", nargs="*", metavar="FILE_OR_FOLDER", help="pictures, or folders of pictures")
    p.add_argument("--model", default=None, help="model file (default: the model shipped with digitrec)")
    p.add_argument("--backend", default="torch", help="inference backend (default torch)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threshold", type=float, default=None,
                   help="answers with a lower probability are marked unsure (default 0.6)")
    p.add_argument("--number", action="store_true", help="each picture holds a multi-digit number")
    p.add_argument("--page", action="store_true",
                   help="each picture is a page (a form, a photo of a sheet): every number on it, with its box")
    p.add_argument("--json", action="store_true", help="one JSON object per picture (JSON Lines)")
    p.add_argument("--save-boxes", metavar="DIR", default=None,
                   help="with --page: write each picture with the boxes and readings drawn on it as DIR/<name>.png")
    p.add_argument("--save-input", metavar="DIR", default=None, help="write the 28x28 input the model saw as PNG")
    p.add_argument("--csv", metavar="TEST_CSV", default=None, help="Kaggle test.csv (784 pixel columns per row)")
    p.add_argument("--out", metavar="SUBMISSION_CSV", default=None, help="with --csv: write ImageId,Label here")
    p.add_argument("--batch-size", type=int, default=64, help="pictures per model call (default 64)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args) -> int:
    check_args(args)
    from digitrec.inference.recognizer import DEFAULT_THRESHOLD, Recognizer

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    recognizer = Recognizer.load(args.model, backend=args.backend, threshold=threshold, device=args.device)
    if args.csv:
        write_submission(recognizer, Path(args.csv), Path(args.out), args.batch_size)
    files, failed = collect(args.paths)
    if args.page:
        from digitrec.cli.pages import read_pages

        boxes = Path(args.save_boxes) if args.save_boxes else None
        return 1 if read_pages(recognizer, files, args.json, boxes, report) + failed else 0
    saver = InputSaver(Path(args.save_input)) if args.save_input else None
    failed += predict_files(recognizer, files, args, saver)
    return 1 if failed else 0


def check_args(args) -> None:
    if not args.paths and not args.csv:
        raise DigitrecError("predict: give at least one picture or folder, or --csv TEST_CSV --out FILE")
    if bool(args.csv) != bool(args.out):
        raise DigitrecError("--csv and --out go together: --csv test.csv --out submission.csv")
    if args.batch_size < 1:
        raise DigitrecError(f"must be at least 1, got {args.batch_size}", field="batch_size")
    if args.out:
        check_writable_file(args.out, "out")
    if args.save_input:
        check_writable_dir(args.save_input, "save_input")
    check_page_args(args)


def check_page_args(args) -> None:
    """--page reads pictures of pages: not with --number or --save-input (--save-boxes shows what it
    saw); --save-boxes needs it."""
    if args.save_boxes and not args.page:
        raise DigitrecError("--save-boxes goes with --page: digitrec predict --page PAGES --save-boxes DIR")
    if not args.page:
        return
    for given, option in ((args.number, "--number"), (args.save_input, "--save-input")):
        if given:
            raise DigitrecError(f"--page and {option} do not go together: --page reads every number on a page")
    if args.save_boxes:
        check_writable_dir(args.save_boxes, "save_boxes")


def collect(paths: list[str]) -> tuple[list[Path], int]:
    """Files as given plus the pictures inside folders (recursively, sorted); missing paths fail."""
    files, failed = [], 0
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            suffixes = IMAGE_SUFFIXES | EXTRA_SUFFIXES
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                failed += report(f"{path}: folder holds no pictures")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            failed += report(f"{path}: file not found")
    return files, failed


def report(message: str) -> int:
    """One line on stderr for a bad file; returns 1 to count it."""
    from tqdm import tqdm

    tqdm.write(f"digitrec: error: {message}", file=sys.stderr)
    return 1


def batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def predict_files(recognizer, files: list[Path], args, saver: "InputSaver | None") -> int:
    """Preprocess each file (a bad one is reported and skipped), run the model per batch, print."""
    from tqdm import tqdm

    failed = 0
    with tqdm(total=len(files), unit="file", disable=True if args.quiet or len(files) < 2 else None,
              file=sys.stderr, leave=False) as bar:
        for chunk in batches(files, args.batch_size):
            results, bad = recognise_chunk(recognizer, chunk, args.number)
            failed += bad
            for path, result in results:
                bar.clear()
                print(json.dumps(result.to_dict()) if args.json else format_result(result), flush=True)
                if saver is not None:
                    saver.save(path, result)
            bar.update(len(chunk))
    return failed


def recognise_chunk(recognizer, chunk: list[Path], number: bool) -> tuple[list, int]:
    """[(path, Prediction or NumberReading)] for the readable files of `chunk`, and how many failed:
    the Recognizer's own methods, the ones the HTTP API calls too."""
    names = [str(path) for path in chunk]
    answers = recognizer.read_numbers(chunk, names) if number else recognizer.predict_many(chunk, names)
    results, failed = [], 0
    for path, answer in zip(chunk, answers):
        if isinstance(answer, DigitrecError):
            failed += report(str(answer))
        else:
            results.append((path, answer))
    return results, failed


def format_result(result) -> str:
    """One line per picture: digit (or number), probability, then top 3 (or each digit's)."""
    if result.blank:
        return f"{result.source}: blank (no ink found)"
    flag = "?  (unsure)" if result.unsure else ""
    if hasattr(result, "text"):
        each = " ".join(f"{'?' if d.not_digit else d.digit}:{d.probability:.3f}{'?' if d.unsure else ''}"
                        for d in result.digits)
        return f"{result.source}: {result.text}{flag}  p={result.probability:.3f}  digits {each}"
    if result.not_digit:
        closest = result.top3[0]
        return (f"{result.source}: not a digit  p={result.probability:.3f}  "
                f"(closest digit {closest[0]}: {closest[1]:.3f})")
    top3 = " ".join(f"{d}:{p:.3f}" for d, p in result.top3)
    return f"{result.source}: {result.digit}{flag}  p={result.probability:.3f}  top3 {top3}"


class InputSaver:
    """Writes the 28×28 inputs as DIR/<name>.png (numbers: <name>-<i>.png), never overwriting
    one written in the same run (a second photo.png becomes photo-2.png)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.used: set[str] = set()

    def save(self, path: Path, result) -> None:
        digits = getattr(result, "digits", None)
        if digits is None:
            self._write(path.stem, result.input)
        for i, d in enumerate(digits or []):
            self._write(f"{path.stem}-{i}", d.input)

    def _write(self, stem: str, image: np.ndarray) -> None:
        from PIL import Image

        name, n = stem, 1
        while name in self.used:
            n += 1
            name = f"{stem}-{n}"
        self.used.add(name)
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        atomic_write(self.folder / f"{name}.png", buf.getvalue())


def write_submission(recognizer, csv_path: Path, out: Path, batch_size: int) -> None:
    """Kaggle's digit-recognizer submission: `ImageId,Label`, ImageId counting from 1.

    The CSV rows are already MNIST-style 28×28, so they go to the model without preprocessing."""
    from digitrec.data.formats import read_kaggle_csv

    images, _ = read_kaggle_csv(csv_path)
    labels = np.concatenate([recognizer.probabilities(chunk)[:, :10].argmax(1)
                             for chunk in batches(images, max(batch_size, 256))])
    lines = ["ImageId,Label"] + [f"{i},{int(label)}" for i, label in enumerate(labels, start=1)]
    atomic_write(out, ("\n".join(lines) + "\n").encode())
    print(f"wrote {len(labels)} predictions to {out}", file=sys.stderr)
