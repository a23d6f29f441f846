"""Damaged and empty data files, as a user hands them to `digitrec train` and `digitrec evaluate`:
each is one line naming the file and what is wrong, exit code 2, and no run folder left behind."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_user_error, bad_cases, idx_bytes, run_cli
from PIL import Image


def bad_empty_csv(folder):
    (folder / "train.csv").write_bytes(b"")
    return folder / "train.csv", ["train.csv", "CSV file is empty"]


def bad_header_only_csv(folder):
    (folder / "train.csv").write_text("label," + ",".join(f"pixel{i}" for i in range(784)) + "\n")
    return folder / "train.csv", ["train.csv", "has a header but no rows"]


def bad_npz_without_arrays(folder):
    np.savez(folder / "mnist.npz", images=np.zeros((3, 28, 28), np.uint8))
    return folder / "mnist.npz", ["mnist.npz", "no x_train/y_train or x_test/y_test arrays"]


def bad_npz_without_labels(folder):
    np.savez(folder / "mnist.npz", x_train=np.zeros((3, 28, 28), np.uint8))
    return folder / "mnist.npz", ["mnist.npz", "has x_train but no y_train"]


def bad_class_folders_without_pictures(folder):
    for d in "0123456789":
        (folder / "digits" / d).mkdir(parents=True)
    (folder / "digits" / "3" / "notes.txt").write_text("not a picture")
    return folder / "digits", ["digits", "hold no images"]


def bad_no_class_folders(folder):
    (folder / "digits").mkdir()
    Image.new("L", (28, 28)).save(folder / "digits" / "a.png")
    return folder / "digits", ["digits", "no class sub-folders named 0-9"]


def bad_idx_of_the_wrong_rank(folder):
    idx = folder / "idx"
    idx.mkdir()
    (idx / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((3, 784), np.uint8)))  # 2-D, not 3-D
    (idx / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    return idx, ["train-images-idx3-ubyte", "expected 3 IDX dimensions, found 2"]


# each case makes the damaged file (or folder) in a folder and says the words its error must contain
CASES = bad_cases(bad_empty_csv, bad_header_only_csv, bad_npz_without_arrays, bad_npz_without_labels,
                  bad_class_folders_without_pictures, bad_no_class_folders, bad_idx_of_the_wrong_rank)


@pytest.mark.parametrize("make", CASES)
def test_train_on_a_damaged_data_file(make, tmp_path):
    data, words = make(tmp_path)
    result = run_cli("train", "--data", data, "--epochs", "1", "--out", tmp_path / "run", in_process=True)
    assert_user_error(result, *words)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("make", CASES[:3])
def test_evaluate_on_a_damaged_data_file(make, tmp_path, quick_run):
    data, words = make(tmp_path)
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
