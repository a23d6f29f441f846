"""Kaggle CSV files through the C reader (`np.loadtxt`) and, for anything it refuses, the row-by-row
reader that names the bad row: the same arrays and the same one-line errors either way."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.data import formats
from digitrec.data.formats import read_kaggle_csv
from digitrec.errors import DigitrecError


def _write(path, rows: list[str]):
    path.write_text("\n".join(["label," + ",".join(f"pixel{i}" for i in range(784))] + rows) + "\n")
    return path


def _rows(mnist_test, n=4, fmt=str):
    return [",".join([str(mnist_test.labels[i])] + [fmt(v) for v in mnist_test.images[i].reshape(-1)])
            for i in range(n)]


def test_a_clean_file_never_takes_the_slow_path(tmp_path, mnist_test, monkeypatch):
    def slow(*_):
        raise AssertionError("the row-by-row reader ran on a clean file")

    monkeypatch.setattr(formats, "_csv_values", slow)
    images, labels = read_kaggle_csv(_write(tmp_path / "train.csv", _rows(mnist_test)))
    assert np.array_equal(images, mnist_test.images[:4]) and np.array_equal(labels, mnist_test.labels[:4])


@pytest.mark.parametrize("fmt", [lambda v: f"{v}.0", lambda v: f'"{v}"', lambda v: f" {v} "])
def test_what_the_c_reader_refuses_is_still_read(tmp_path, mnist_test, fmt):
    """Decimal points and quoted fields go the slow way and give the same digits."""
    images, labels = read_kaggle_csv(_write(tmp_path / "train.csv", _rows(mnist_test, fmt=fmt)))
    assert np.array_equal(images, mnist_test.images[:4]) and np.array_equal(labels, mnist_test.labels[:4])


def test_crlf_lines_and_a_byte_order_mark(tmp_path, mnist_test):
    path = _write(tmp_path / "train.csv", _rows(mnist_test))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    images, labels = read_kaggle_csv(path)
    assert np.array_equal(images, mnist_test.images[:4]) and np.array_equal(labels, mnist_test.labels[:4])


@pytest.mark.parametrize("edit, message", [
    (lambda rows: rows.__setitem__(3, rows[3].rsplit(",", 1)[0]), "row 5 has 784 columns, expected 785"),
    (lambda rows: rows.__setitem__(0, rows[0].replace(",0,", ",70000,", 1)), "row 2: pixel value outside 0-255"),
    (lambda rows: rows.__setitem__(1, rows[1].replace(",0,", ",-1,", 1)), "row 3: pixel value outside 0-255"),
    (lambda rows: rows.__setitem__(2, rows[2].replace(",0,", ",,", 1)), "row 4 holds a value that is not a number"),
])
def test_bad_rows_are_named(tmp_path, mnist_test, edit, message):
    rows = _rows(mnist_test)
    edit(rows)
    with pytest.raises(DigitrecError, match=message):
        read_kaggle_csv(_write(tmp_path / "train.csv", rows))


def test_an_empty_file(tmp_path):
    (tmp_path / "train.csv").write_bytes(b"")
    with pytest.raises(DigitrecError, match="CSV file is empty"):
        read_kaggle_csv(tmp_path / "train.csv")
