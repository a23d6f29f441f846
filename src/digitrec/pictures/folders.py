"""Folders of people's own pictures → digits, each picture read through `preprocess` as `predict` reads it.

The layout people have: DIR/0 … DIR/9, one folder per digit (optionally under DIR/train/ and DIR/test/),
pictures of any size, format and polarity; `digitrec serve --collect DIR` writes it. A picture that
cannot be used (unreadable, blank, outside a digit folder) is skipped and named with its reason, and the
rest are read. What `preprocess` made of each picture is cached (`PictureCache`), so a second run over
the same folder decodes nothing again. The data room reads class folders through the reader passed to
`data.dataset.load`; `load_data` passes this one.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from digitrec.data import dataset as datamod
from digitrec.data.folders import Skipped, class_folder_files
from digitrec.errors import DigitrecError
from digitrec.pictures import decode
from digitrec.pictures import preprocess as prep
from digitrec.util import SIDE
from digitrec.util.files import atomic_path
from digitrec.util.system import cache_dir

Key = tuple[str, int, int]  # (path relative to the folder, size in bytes, modification time in ns)


@dataclass
class FolderPictures:
    """What a folder of digit folders held: the usable digits, the pictures skipped, the cache's share."""

    folder: Path
    images: np.ndarray  # (N, 28, 28) uint8, as `preprocess` makes them
    labels: np.ndarray  # (N,) int64
    skipped: list[Skipped]
    cached: int  # pictures whose result came from the cache

    def summary(self) -> str:
        digits = " ".join(str(d) for d in np.unique(self.labels))
        skipped = f"{len(self.skipped)} skipped, listed above; " if self.skipped else ""
        return (f"{self.folder}: {len(self.labels)} pictures read "
                f"(digits {digits}; {skipped}{self.cached} from the cache)")


def read_one(path: Path) -> tuple[np.ndarray | None, str]:
    """(the 28×28 digit, "") or (None, why it cannot be used)."""
    try:
        pre = prep.preprocess(path, str(path))
    except DigitrecError as exc:
        return None, exc.message.removeprefix(f"{path}: ")
    if pre.blank:
        return None, "blank (no ink found)"
    return pre.image, ""


@functools.cache
def code_digest() -> str:
    """A digest of the code that turns pictures into digits: a change to it makes old cache entries stale."""
    h = hashlib.sha256(str(SIDE).encode())
    for module in (prep, decode):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()[:16]


class PictureCache:
    """What `preprocess` made of each picture of one folder, keyed by (relative path, size, mtime in
    ns), in one .npz under the cache folder, written atomically. A damaged or unwritable cache is
    ignored: it only saves time."""

    def __init__(self, folder: Path) -> None:
        name = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:24]
        self.path = cache_dir() / "pictures" / f"{name}.npz"
        self.entries: dict[Key, tuple[np.ndarray | None, str]] = {}

    def load(self) -> "PictureCache":
        try:
            with np.load(self.path, allow_pickle=False) as f:
                if str(f["code"]) != code_digest():
                    return self
                for key, image, reason in zip(zip(f["names"].tolist(), f["sizes"].tolist(), f["mtimes"].tolist()),
                                              f["images"], f["reasons"].tolist()):
                    self.entries[key] = (None if reason else image, reason)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            self.entries.clear()
        return self

    def save(self, entries: dict[Key, tuple[np.ndarray | None, str]]) -> None:
        keys = list(entries)
        blank = np.zeros((SIDE, SIDE), np.uint8)
        arrays = {"code": np.array(code_digest()), "names": np.array([k[0] for k in keys], dtype=str),
                  "sizes": np.array([k[1] for k in keys], np.int64), "mtimes": np.array([k[2] for k in keys], np.int64),
                  "images": np.stack([blank if v[0] is None else v[0] for v in entries.values()]),
                  "reasons": np.array([v[1] for v in entries.values()], dtype=str)}
        try:
            with atomic_path(self.path) as tmp, open(tmp, "wb") as f:
                np.savez(f, **arrays)
        except OSError:
            pass


def read_pictures(folder: str | Path, cache: bool = True, progress: bool | None = None) -> FolderPictures:
    """Every usable picture of `folder`'s digit folders, preprocessed (from the cache when unchanged)."""
    folder = Path(folder)
    files, skipped = class_folder_files(folder)
    store = PictureCache(folder).load() if cache else None
    done: dict[Key, tuple[np.ndarray | None, str]] = {}
    images, labels, cached = [], [], 0
    for path, digit in tqdm(files, desc=f"reading {folder}", unit="picture", leave=False, file=sys.stderr,
                            disable=(not progress) if progress is not None else None):
        try:
            stat = path.stat()
        except OSError as exc:
            skipped.append(Skipped(path, f"cannot read ({exc.strerror})"))
            continue
        key = (path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns)
        hit = store.entries.get(key) if store is not None else None
        cached += hit is not None
        image, reason = done[key] = hit if hit is not None else read_one(path)
        if image is None:
            skipped.append(Skipped(path, reason))
        else:
            images.append(image)
            labels.append(digit)
    if store is not None and done.keys() != store.entries.keys():
        store.save(done)
    if not images:
        raise DigitrecError(f"{folder}: none of its {len(files)} pictures can be used ({len(skipped)} skipped)")
    skipped.sort(key=lambda s: str(s.path))
    return FolderPictures(folder, np.stack(images), np.asarray(labels, np.int64), skipped, cached)


def _to_stderr(line: str) -> None:
    tqdm.write(line, file=sys.stderr)


def load_data(source: str | Path | None = None, split: str = "train", data_dir: str | Path | None = None,
              log: Callable[[str], None] = print, warn: Callable[[str], None] = _to_stderr,
              cache: bool = True) -> datamod.Dataset:
    """`data.load` (MNIST, .csv, .npz, IDX folders), with class folders read as people's pictures
    (`read_pictures`): each skipped picture one line to `warn` (stderr), then a summary to `log`."""

    def read(folder: Path) -> tuple[np.ndarray, np.ndarray]:
        got = read_pictures(folder, cache=cache)
        for skipped in got.skipped:
            warn(f"digitrec: skipped {skipped}")
        log(got.summary())
        return got.images, got.labels

    return datamod.load(source, split, data_dir, read_folder=read)
