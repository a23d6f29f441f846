"""Damaged and empty data files, as a user hands them to `digitrec train` and `digitrec evaluate`:
each is one line naming the file and what is wrong, exit code 2, and no run folder left behind."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_user_error, idx_bytes, run_cli
from PIL import Image


def make(kind: str, folder):
    """The damaged file (or folder) `kind`, and the words its error must contain."""
    if kind == "empty-csv":
        (folder / "train.csv").write_bytes(b"")
        return folder / "train.csv", ["train.csv", "CSV file is empty"]
    if kind == "header-only-csv":
        (folder / "train.csv").write_text("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n")
        return folder / "train.csv", ["train.csv", "has a header but no rows"]
    if kind == "npz-without-arrays":
        np.savez(folder / "mnist.npz", images=np.zeros((3, 28, 28), np.uint8))
        return folder / "mnist.npz", ["mnist.npz", "no x_train/y_train or x_test/y_test arrays"]
    if kind == "npz-without-labels":
        np.savez(folder / "mnist.npz", x_train=np.zeros((3, 28, 28), np.uint8))
        return folder / "mnist.npz", ["mnist.npz", "has x_train but no y_train"]
    if kind == "class-folders-without-pictures":
        for d in "0123456789":
            (folder / "digits" / d).mkdir(parents=True)
        (folder / "digits" / "3" / "notes.txt").write_text("not a picture")
        return folder / "digits", ["digits", "hold no images"]
    if kind == "no-class-folders":
        (folder / "digits").mkdir()
        Image.new("L", (28, 28)).save(folder / "digits" / "a.png")
        return folder / "digits", ["digits", "no class sub-folders named 0-9"]
    if kind == "idx-of-the-wrong-rank":
        idx = folder / "idx"
        idx.mkdir()
        (idx / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((3, 784), np.uint8)))  # 2-D, not 3-D
        (idx / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(3, np.uint8)))
        return idx, ["train-images-idx3-ubyte", "expected 3 IDX dimensions, found 2"]
    raise ValueError(kind)


KINDS = ["empty-csv", "header-only-csv", "npz-without-arrays", "npz-without-labels",
         "class-folders-without-pictures", "no-class-folders", "idx-of-the-wrong-rank"]


@pytest.mark.parametrize("kind", KINDS)
def test_train_on_a_damaged_data_file(kind, tmp_path):
    data, words = make(kind, tmp_path)
    result = run_cli("train", "--data", data, "--epochs", "1", "--out", tmp_path / "run", in_process=True)
    assert_user_error(result, *words)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kind", ["empty-csv", "header-only-csv", "npz-without-arrays"])
def test_evaluate_on_a_damaged_data_file(kind, tmp_path, quick_run):
    data, words = make(kind, tmp_path)
    assert_user_error(run_cli("evaluate", quick_run[0] / "model.safetensors", "--data", data, in_process=True),
                      *words)


def test_an_unreadable_picture_in_a_class_folder_is_named_and_skipped(tmp_path, mnist_test, monkeypatch):
    """A broken picture is listed on stderr with its reason; the run goes on with the good ones."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for i in range(8):
        (tmp_path / "d" / str(i % 4)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(mnist_test.images[i]).save(tmp_path / "d" / str(i % 4) / f"ok{i}.png")
    (tmp_path / "d" / "2" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    result = run_cli("train", "--data", tmp_path / "d", "--model", "conv2-fc64", "--epochs", "1", "--no-report",
                     "--threads", "1", "--out", tmp_path / "run", in_process=True)
    assert result.returncode == 0, result.stderr
    skipped = [line for line in result.stderr.splitlines() if line.startswith("digitrec: skipped")]
    assert len(skipped) == 1 and "broken.png" in skipped[0] and "image" in skipped[0]
    assert "8 pictures read (digits 0 1 2 3; 1 skipped, listed above" in result.stdout
    assert (tmp_path / "run" / "model.safetensors").is_file()
