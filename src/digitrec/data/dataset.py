"""Datasets in memory: uint8 images (N, 28, 28) and int64 labels (N,).

MNIST is small (47 MB as uint8), so every source is read whole into one array;
training slices batches out of it instead of going through a DataLoader.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from digitrec.data.download import SHA256, download_file, verify
from digitrec.data.folders import SPLITS, read_image_folder
from digitrec.data.formats import (
    parse_idx,
    read_bytes,
    read_kaggle_csv,
    read_npz,
)
from digitrec.errors import DigitrecError
from digitrec.util import NOT_A_DIGIT, SIDE
from digitrec.util.system import cache_dir

# Training images held out for validation unless told otherwise: every choice (recipes, calibration,
# thresholds) is made on these, never on the test split.
DEFAULT_VAL_SIZE = 5000
# Reads a folder of class sub-folders (`0/` … `9/`) → (images (N, 28, 28) uint8, labels (N,) int64).
# The data room's own reader takes MNIST-style 28×28 images only; `pictures.folders` passes one that
# reads any picture through `preprocess`, as `predict` does (this room cannot import that one).
FolderReader = Callable[[Path], tuple[np.ndarray, np.ndarray]]
_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class Dataset:
    """Digits in memory; `labels` is None for unlabelled data such as Kaggle's test.csv."""

    images: np.ndarray  # (N, 28, 28) uint8, 0 = background, 255 = ink
    labels: np.ndarray | None  # (N,) int64 in 0..9, or 10 (NOT_A_DIGIT) for synthetic non-digits
    source: str

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.shape[1:] != (SIDE, SIDE):
            raise DigitrecError(f"{self.source}: images have shape {self.images.shape}, expected (N, 28, 28)")
        if self.labels is None:
            return
        if len(self.labels) != len(self.images):
            raise DigitrecError(
                f"{self.source}: {len(self.images)} images but {len(self.labels)} labels"
            )
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() > NOT_A_DIGIT):
            raise DigitrecError(f"{self.source}: labels outside 0-9")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray, source: str | None = None) -> "Dataset":
        labels = None if self.labels is None else self.labels[index]
        return Dataset(self.images[index], labels, source or self.source)

    def concat(self, *others: "Dataset", source: str | None = None) -> "Dataset":
        """This dataset with `others` appended (all labelled)."""
        parts = [self, *others]
        return Dataset(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]),
                       source or "+".join(p.source for p in parts))

    def checksum(self) -> str:
        """SHA-256 of the images and labels, recorded in model files to tie them to their data."""
        h = hashlib.sha256(np.ascontiguousarray(self.images).tobytes())
        if self.labels is not None:
            h.update(self.labels.astype("<i8").tobytes())
        return h.hexdigest()


def default_data_dir(data_dir: str | Path | None = None) -> Path:
    """--data-dir, else $DIGITREC_DATA, else the cache folder's mnist/ (~/.cache/digitrec/mnist)."""
    if data_dir:
        return Path(data_dir)
    if os.environ.get("DIGITREC_DATA"):
        return Path(os.environ["DIGITREC_DATA"])
    return cache_dir() / "mnist"


def _find_or_download(directory: Path, name: str, download: bool) -> Path:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    if not download:
        raise DigitrecError(f"{directory / name}: file not found (gzip or raw)")
    return download_file(name, directory)


def _read_checked_idx(path: Path, name: str, ndim: int) -> np.ndarray:
    """Parse first, so a file of the wrong shape says so; then the checksum catches any other change."""
    raw = read_bytes(path)
    array = parse_idx(raw, path, ndim)
    verify(name, raw, path)
    return array


def load_mnist(split: str = "train", data_dir: str | Path | None = None, download: bool = True) -> Dataset:
    """MNIST `split` from IDX files, downloading (checksummed) when they are missing."""
    if split not in SPLITS:
        raise DigitrecError(f"unknown split {split!r}, expected one of {', '.join(SPLITS)}", field="split")
    directory = default_data_dir(data_dir)
    image_name, label_name = _IDX_NAMES[split]
    image_path = _find_or_download(directory, image_name, download)
    label_path = _find_or_download(directory, label_name, download)
    images = _read_checked_idx(image_path, image_name, 3)
    labels = _read_checked_idx(label_path, label_name, 1).astype(np.int64)
    if len(images) != len(labels):
        raise DigitrecError(f"{label_path}: {len(labels)} labels for {len(images)} images in {image_path}")
    return Dataset(images, labels, f"mnist:{split}")


def mnist_checksums() -> dict[str, str]:
    """The published checksums, stored in model metadata when MNIST was the data."""
    return dict(SHA256)


def load(source: str | Path | None = None, split: str = "train", data_dir: str | Path | None = None,
         read_folder: FolderReader | None = None) -> Dataset:
    """Any supported source: None/"mnist" (IDX), a .csv, a .npz, a folder of IDX files or of class folders
    (read by `read_folder`, default: MNIST-style 28×28 images only)."""
    if source in (None, "mnist"):
        return load_mnist(split, data_dir)
    path = Path(source)
    if not path.exists():
        raise DigitrecError(f"{path}: file not found")
    if path.is_dir():
        return _load_folder(path, split, read_folder or read_image_folder)
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        images, labels = read_kaggle_csv(path)
        return Dataset(images, labels, str(path))
    if name.endswith(".npz"):
        splits = read_npz(path)
        if split not in splits:
            raise DigitrecError(f"{path}: has no x_{split}/y_{split} arrays")
        x, y = splits[split]
        return Dataset(np.asarray(x, dtype=np.uint8), np.asarray(y, dtype=np.int64), f"{path}:{split}")
    raise DigitrecError(f"{path}: unknown data format (expected .csv, .npz, or a folder)")


def class_folder(source: str | Path | None, split: str = "train") -> Path | None:
    """The folder of class sub-folders that `load(source, split)` reads, or None when `source` is
    something else (MNIST, a file, a folder of IDX files)."""
    if source in (None, "mnist") or not Path(source).is_dir():
        return None
    path = Path(source)
    if any((path / f"{_IDX_NAMES[split][0]}{ext}").exists() for ext in ("", ".gz")):
        return None
    return path / split if (path / split).is_dir() else path


def _load_folder(path: Path, split: str, read_folder: FolderReader) -> Dataset:
    """A folder holding MNIST IDX files, `train/` and `test/` class folders, or class folders."""
    classes = class_folder(path, split)
    if classes is None:
        return load_mnist(split, path, download=False)
    images, labels = read_folder(classes)
    return Dataset(images, labels, str(classes))


def train_val_split(train: Dataset, n_val: int = DEFAULT_VAL_SIZE, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Hold out `n_val` training images for validation, the same ones for every run with `seed`."""
    if not 0 <= n_val < len(train):
        raise DigitrecError(f"{n_val} must be between 0 and {len(train) - 1}", field="val_size")
    order = np.random.default_rng(seed).permutation(len(train))
    return (
        train.subset(np.sort(order[n_val:]), f"{train.source}[train]"),
        train.subset(np.sort(order[:n_val]), f"{train.source}[val]"),
    )


def stratified_split(data: Dataset, share: float, seed: int = 0, minimum: int = 2) -> tuple[Dataset, Dataset]:
    """Hold out `share` of each label's images (at least one, never all), the same ones for every run with
    `seed`: for a person's own pictures, every digit they gave is both learnt from and checked on, so a
    label with fewer than `minimum` images is an error naming its folder."""
    order = np.random.default_rng(seed).permutation(len(data))
    held = []
    for label in np.unique(data.labels):
        idx = order[data.labels[order] == label]  # this label's images, in the seed's order
        if len(idx) < minimum:
            raise DigitrecError(f"{data.source}/{label}: {len(idx)} usable picture of {label}; every digit given "
                                f"needs at least {minimum} (one to learn from, one held out to check on)")
        held.append(idx[:min(len(idx) - 1, max(1, round(share * len(idx))))])
    val = np.sort(np.concatenate(held))
    train = np.setdiff1d(np.arange(len(data)), val)
    return data.subset(train, f"{data.source}[train]"), data.subset(val, f"{data.source}[val]")
