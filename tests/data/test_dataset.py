"""Reading every data format, and a clear one-line error for every kind of bad file."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from helpers import assert_user_error, idx_bytes, run_cli, write_idx

from digitrec.data import dataset as datamod
from digitrec.data.formats import read_idx, read_kaggle_csv
from digitrec.errors import DigitrecError


def test_mnist_loads_with_published_shapes(mnist_train, mnist_test):
    assert mnist_train.images.shape == (60000, 28, 28) and mnist_train.images.dtype == np.uint8
    assert mnist_test.labels.shape == (10000,) and set(np.unique(mnist_test.labels)) == set(range(10))


def test_raw_and_gzip_idx_read_the_same(tmp_path, mnist_test):
    images = mnist_test.images[:50]
    gz = write_idx(tmp_path / "a.gz", images, compress=True)
    raw = write_idx(tmp_path / "a", images, compress=False)
    assert np.array_equal(read_idx(gz, 3), read_idx(raw, 3))
    assert np.array_equal(read_idx(raw, 3), images)


@pytest.mark.parametrize("corrupt, message", [
    (lambda b: b"\x00\x00\x09\x03" + b[4:], "bad magic"),
    (lambda b: b[:8] + (29).to_bytes(4, "big") + b[12:], "29x28, expected 28x28"),
    (lambda b: b[:-100], "promises"),
])
def test_bad_idx_is_a_one_line_error(tmp_path, mnist_test, corrupt, message):
    good = idx_bytes(mnist_test.images[:3])
    path = tmp_path / "bad-idx"
    path.write_bytes(corrupt(good))
    with pytest.raises(DigitrecError, match=message):
        read_idx(path, 3)


def test_wrong_image_size_is_rejected(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(DigitrecError, match="32x32, expected 28x28"):
        read_idx(path, 3)


def test_truncated_gzip_is_rejected(tmp_path, mnist_dir):
    src = (mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()
    path = tmp_path / "t.gz"
    path.write_bytes(src[: len(src) // 2])
    with pytest.raises(DigitrecError, match="truncated gzip"):
        read_idx(path, 1)


def _copy_mnist_test(src, dst):
    dst.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(src / name, dst / name)
    return dst


def test_checksum_mismatch_is_caught(tmp_path, mnist_dir, mnist_test):
    folder = _copy_mnist_test(mnist_dir, tmp_path / "m")
    labels = mnist_test.labels.astype(np.uint8).copy()
    labels[0] = (labels[0] + 1) % 10  # one wrong label: valid IDX, wrong content
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(DigitrecError, match="t10k-labels-idx1-ubyte.gz: SHA-256 checksum mismatch"):
        datamod.load_mnist("test", folder, download=False)


def test_image_and_label_counts_must_agree():
    with pytest.raises(DigitrecError, match="5 images but 4 labels"):
        datamod.Dataset(np.zeros((5, 28, 28), np.uint8), np.zeros(4, np.int64), "x")


def _kaggle_csv(path, images, labels=None, header_style="pixel"):
    names = [f"pixel{i}" for i in range(784)] if header_style == "pixel" else \
        [f"{r}x{c}" for r in range(1, 29) for c in range(1, 29)]
    rows = [",".join((["label"] if labels is not None else []) + names)]
    for i, img in enumerate(images):
        values = ([str(labels[i])] if labels is not None else []) + [str(v) for v in img.reshape(-1)]
        rows.append(",".join(values))
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("style", ["pixel", "RxC"])
def test_kaggle_csv_both_header_styles(tmp_path, mnist_test, style):
    path = _kaggle_csv(tmp_path / "train.csv", mnist_test.images[:20], mnist_test.labels[:20], style)
    ds = datamod.load(path)
    assert np.array_equal(ds.images, mnist_test.images[:20]) and np.array_equal(ds.labels, mnist_test.labels[:20])


def test_unlabelled_kaggle_test_csv(tmp_path, mnist_test):
    images, labels = read_kaggle_csv(_kaggle_csv(tmp_path / "test.csv", mnist_test.images[:5]))
    assert labels is None and np.array_equal(images, mnist_test.images[:5])


@pytest.mark.parametrize("edit, message", [
    (lambda rows: rows.__setitem__(2, rows[2] + ",0"), "row 3 has 786 columns, expected 785"),
    (lambda rows: rows.__setitem__(1, rows[1].replace(",0,", ",x,", 1)), "row 2 holds a value that is not a number"),
    (lambda rows: rows.__setitem__(1, rows[1].replace(",0,", ",300,", 1)), "row 2: pixel value outside 0-255"),
    (lambda rows: rows.__setitem__(1, "12" + rows[1][1:]), "row 2: label 12 is outside 0-9"),
])
def test_bad_csv_rows(tmp_path, mnist_test, edit, message):
    path = _kaggle_csv(tmp_path / "train.csv", mnist_test.images[:3], mnist_test.labels[:3])
    rows = path.read_text().splitlines()
    edit(rows)
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DigitrecError, match=message):
        read_kaggle_csv(path)


def test_keras_npz(tmp_path, mnist_test):
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=mnist_test.images[:30], y_train=mnist_test.labels[:30],
             x_test=mnist_test.images[30:40], y_test=mnist_test.labels[30:40])
    assert len(datamod.load(path, "train")) == 30
    assert np.array_equal(datamod.load(path, "test").labels, mnist_test.labels[30:40])


def test_folder_of_class_folders(tmp_path, mnist_test):
    from PIL import Image

    for i in range(12):
        d = tmp_path / str(mnist_test.labels[i])
        d.mkdir(exist_ok=True)
        Image.fromarray(mnist_test.images[i]).save(d / f"{i}.png")
    ds = datamod.load(tmp_path)
    assert len(ds) == 12 and sorted(ds.labels.tolist()) == sorted(mnist_test.labels[:12].tolist())


def test_validation_split_is_fixed_and_disjoint(mnist_test):
    a_train, a_val = datamod.train_val_split(mnist_test, 1000)
    b_train, b_val = datamod.train_val_split(mnist_test, 1000)
    assert len(a_val) == 1000 and len(a_train) == 9000
    assert np.array_equal(a_val.images, b_val.images) and np.array_equal(a_train.images, b_train.images)


def test_validation_images_never_reach_training():
    """Each image carries its own index in its first pixels, so a leak of even one is seen."""
    n = 3000
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 0, :2] = np.stack([np.arange(n) // 256, np.arange(n) % 256], 1)
    data = datamod.Dataset(images, np.arange(n) % 10, "indexed")

    def ids(part):
        return set((part.images[:, 0, 0].astype(int) * 256 + part.images[:, 0, 1]).tolist())

    train, val = datamod.train_val_split(data, 500)
    assert len(ids(val)) == 500 and len(ids(train)) == n - 500
    assert not ids(train) & ids(val) and ids(train) | ids(val) == set(range(n))
    assert ids(datamod.train_val_split(data, 500, seed=1)[1]) != ids(val)  # the seed picks them


def test_missing_data_file_via_cli(tmp_path):
    result = run_cli("train", "--data", tmp_path / "nope.csv", "--out", tmp_path / "run")
    assert_user_error(result, "nope.csv", "not found")
    assert not (tmp_path / "run").exists()


def test_bad_csv_via_cli_names_the_file(tmp_path, mnist_test):
    path = _kaggle_csv(tmp_path / "train.csv", mnist_test.images[:3], mnist_test.labels[:3])
    path.write_text(path.read_text().replace(",0,", ",-1,", 1))
    assert_user_error(run_cli("train", "--data", path, "--out", tmp_path / "r"), "train.csv", "outside 0-255")


def test_split_sizes_at_their_limits_and_the_error_that_names_the_field():
    data = datamod.Dataset(np.zeros((10, 28, 28), np.uint8), np.arange(10) % 10, "ten")
    train, val = datamod.train_val_split(data, 0)
    assert len(train) == 10 and len(val) == 0 and train.source == "ten[train]" and val.source == "ten[val]"
    assert len(datamod.train_val_split(data, 9)[0]) == 1
    for bad in (10, -1):
        with pytest.raises(DigitrecError, match=f"{bad} must be between 0 and 9") as caught:
            datamod.train_val_split(data, bad)
        assert caught.value.field == "val_size"


def test_a_dataset_checks_its_shape_and_labels():
    with pytest.raises(DigitrecError, match="x: images have shape"):
        datamod.Dataset(np.zeros((4, 28), np.uint8), None, "x")
    with pytest.raises(DigitrecError, match="x: images have shape"):
        datamod.Dataset(np.zeros((4, 28, 27), np.uint8), None, "x")
    with pytest.raises(DigitrecError, match="x: labels outside 0-9"):
        datamod.Dataset(np.zeros((2, 28, 28), np.uint8), np.array([3, 11]), "x")
    with pytest.raises(DigitrecError, match="x: labels outside 0-9"):
        datamod.Dataset(np.zeros((2, 28, 28), np.uint8), np.array([-1, 3]), "x")
    ok = datamod.Dataset(np.zeros((3, 28, 28), np.uint8), np.array([0, 9, 10]), "x")  # 10: not a digit
    part = ok.subset(np.array([2]))
    assert part.labels.tolist() == [10] and part.source == "x" and ok.subset(np.array([0]), "y").source == "y"
    assert datamod.Dataset(np.zeros((1, 28, 28), np.uint8), None, "u").subset(np.array([0])).labels is None


def test_stratified_split_holds_out_a_share_of_every_digit(mnist_test):
    data = mnist_test.subset(np.arange(200))
    train, val = datamod.stratified_split(data, 0.2, seed=3)
    assert len(train) + len(val) == 200
    for digit in range(10):
        n, held = int((data.labels == digit).sum()), int((val.labels == digit).sum())
        assert held == max(1, round(0.2 * n)) and int((train.labels == digit).sum()) == n - held
    again = datamod.stratified_split(data, 0.2, seed=3)[1]
    assert np.array_equal(again.images, val.images)  # the same pictures for the same seed
    assert not np.array_equal(datamod.stratified_split(data, 0.2, seed=4)[1].images, val.images)


def test_stratified_split_keeps_one_of_two_and_refuses_one(mnist_test):
    two = mnist_test.subset(np.flatnonzero(mnist_test.labels == 3)[:2], "mine")
    train, val = datamod.stratified_split(two, 0.9)
    assert len(train) == 1 and len(val) == 1  # never all held out
    one = mnist_test.subset(np.concatenate([np.flatnonzero(mnist_test.labels == 3)[:2],
                                            np.flatnonzero(mnist_test.labels == 5)[:1]]), "mine")
    with pytest.raises(DigitrecError, match="mine/5: 1 usable picture of 5; every digit given needs at least 2"):
        datamod.stratified_split(one, 0.2)
