"""Readers for every file format digitrec accepts, each returning plain arrays.

Every reader validates what it reads and raises `DigitrecError` naming the
file and the problem, so a bad file never turns into a shape error deep
inside training.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from pathlib import Path

import numpy as np

from digitrec.errors import DigitrecError
from digitrec.util import SIDE

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
# IDX magic: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions.
_IDX_UBYTE = 0x08


def read_bytes(path: Path) -> bytes:
    """Read a file, transparently un-gzipping it when it starts with the gzip magic."""
    return gunzip_if_needed(read_file(path), path)


def read_file(path: Path) -> bytes:
    """Read a whole file; a missing, folder or unreadable path is a one-line DigitrecError."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise DigitrecError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DigitrecError(f"{path}: is a folder, expected a file") from None
    except OSError as exc:
        raise DigitrecError(f"{path}: cannot read ({exc.strerror})") from None
    return raw


def gunzip_if_needed(raw: bytes, source: object) -> bytes:
    """Un-gzip `raw` when it starts with the gzip magic; `source` names it in errors."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DigitrecError(f"{source}: corrupt or truncated gzip ({exc})") from None


def parse_idx(data: bytes, path: Path, ndim: int) -> np.ndarray:
    """Parse IDX bytes (the original MNIST format) with `ndim` dimensions."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _IDX_UBYTE:
        raise DigitrecError(f"{path}: not an IDX unsigned-byte file (bad magic number)")
    if data[3] != ndim:
        raise DigitrecError(f"{path}: expected {ndim} IDX dimensions, found {data[3]}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DigitrecError(f"{path}: IDX header is truncated")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if ndim == 3 and dims[1:] != (SIDE, SIDE):
        raise DigitrecError(f"{path}: images are {dims[1]}x{dims[2]}, expected 28x28")
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise DigitrecError(
            f"{path}: IDX header promises {expected} bytes of data, file has {len(data) - header}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file (gzip or raw) of `ndim` dimensions."""
    return parse_idx(read_bytes(path), path, ndim)


def read_kaggle_csv(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read Kaggle's digit CSV: a header, then `label,p0..p783` rows, or 784 pixels unlabelled."""
    raw = read_bytes(path)
    first, _, body = raw.partition(b"\n")
    header = next(csv.reader([first.decode("utf-8", errors="replace").lstrip("\ufeff")]), None)
    if not header:
        raise DigitrecError(f"{path}: CSV file is empty")
    labelled = header[0].strip().lower() == "label"
    width = 785 if labelled else 784
    if len(header) != width:
        raise DigitrecError(f"{path}: header has {len(header)} columns, expected {width}")
    if not body.strip():
        raise DigitrecError(f"{path}: CSV file has a header but no rows")
    values = _fast_csv_values(body, width)
    if values is None:  # something the C parser refused: find and name the row the slow, exact way
        values = _csv_values(csv.reader(body.decode("utf-8", errors="replace").splitlines()), path, width)
    labels = values[:, 0].astype(np.int64) if labelled else None
    pixels = values[:, 1:] if labelled else values
    if labels is not None and ((labels < 0) | (labels > 9)).any():
        bad = int(np.argmax((labels < 0) | (labels > 9)))
        raise DigitrecError(f"{path}: row {bad + 2}: label {labels[bad]} is outside 0-9")
    if ((pixels < 0) | (pixels > 255)).any():
        bad = int(np.argmax(((pixels < 0) | (pixels > 255)).any(axis=1)))
        raise DigitrecError(f"{path}: row {bad + 2}: pixel value outside 0-255")
    return pixels.astype(np.uint8).reshape(-1, SIDE, SIDE), labels


def _fast_csv_values(body: bytes, width: int) -> np.ndarray | None:
    """The rows after the header as (N, width) int16, parsed by NumPy's C reader (`np.loadtxt`, C since
    NumPy 1.23): Kaggle's 42,000-row train.csv in about a second instead of row by row in Python
    (docs/finetune.md). None when it refuses anything (a short row, a word, a decimal point, a quoted
    field, a value beyond int16), so that `_csv_values` can name the row exactly as it always has."""
    try:
        values = np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.int16, ndmin=2, comments=None)
    except (ValueError, OverflowError):
        return None
    return values if values.shape[1] == width and len(values) else None


def _csv_values(rows, path: Path, width: int) -> np.ndarray:
    """Row by row in Python: the slow path, for the rows the C reader refused; names the first bad row
    (line numbers count the header as line 1)."""
    out = []
    for line_no, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != width:
            raise DigitrecError(f"{path}: row {line_no} has {len(row)} columns, expected {width}")
        try:
            out.append([int(float(v)) if "." in v else int(v) for v in row])
        except ValueError:
            raise DigitrecError(f"{path}: row {line_no} holds a value that is not a number") from None
    if not out:
        raise DigitrecError(f"{path}: CSV file has a header but no rows")
    return np.asarray(out, dtype=np.int64)


def read_npz(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read Keras's `mnist.npz` (`x_train`, `y_train`, `x_test`, `y_test`) → split → arrays."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DigitrecError(f"{path}: file not found") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DigitrecError(f"{path}: not a readable .npz file ({exc})") from None
    splits = {}
    with archive:
        for split in ("train", "test"):
            if f"x_{split}" not in archive.files:
                continue
            if f"y_{split}" not in archive.files:
                raise DigitrecError(f"{path}: has x_{split} but no y_{split}")
            splits[split] = (archive[f"x_{split}"], archive[f"y_{split}"])
    if not splits:
        raise DigitrecError(f"{path}: no x_train/y_train or x_test/y_test arrays")
    return splits
