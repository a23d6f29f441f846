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
from digitrec.data.formats import IMAGE_SUFFIXES
from digitrec.errors import DigitrecError
from digitrec.pictures import decode
from digitrec.pictures import preprocess as prep
from digitrec.util import SIDE
from digitrec.util.files import atomic_path
from digitrec.util.system import cache_dir

DIGIT_FOLDERS = tuple("0123456789")
# what `digitrec predict` also reads when it finds it in a folder
PICTURE_SUFFIXES = IMAGE_SUFFIXES | {".tga", ".ico", ".jp2", ".heic"}
Key = tuple[str, int, int]  # (path relative to the folder, size in bytes, modification time in ns)


@dataclass(frozen=True)
class Skipped:
    """A picture left out, and why (one line)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


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


def _is_picture(path: Path) -> bool:
    return path.suffix.lower() in PICTURE_SUFFIXES and not path.name.startswith(".") and path.is_file()


def picture_files(folder: Path) -> tuple[list[tuple[Path, int]], list[Skipped]]:
    """Every picture in `folder`'s digit folders with its digit, sorted; and what is left out (pictures
    outside a digit folder, folders inside one). A layout that holds no digit folders is an error."""
    check_layout(folder)
    files, skipped = [], [Skipped(p, "not inside a digit folder (0-9), so its digit is unknown")
                          for p in sorted(folder.iterdir()) if _is_picture(p)]
    for digit in DIGIT_FOLDERS:
        for entry in sorted((folder / digit).iterdir()) if (folder / digit).is_dir() else []:
            if _is_picture(entry):
                files.append((entry, int(digit)))
            elif entry.is_dir() and not entry.name.startswith("."):
                skipped.append(Skipped(entry, f"a folder inside digit folder {digit}/ is not read"))
    if not files:
        raise DigitrecError(f"{folder}: class folders hold no images (pictures go in {folder}/0 … {folder}/9)")
    return files, skipped


def check_layout(folder: Path) -> None:
    """One-line errors for layouts that say nothing or the wrong thing about each picture's digit."""
    folders = [e for e in sorted(folder.iterdir()) if e.is_dir() and not e.name.startswith(".")]
    for other in (e for e in folders if e.name not in DIGIT_FOLDERS):
        if other.name in datamod.SPLITS:
            missing = next(s for s in datamod.SPLITS if s != other.name)
            raise DigitrecError(f"{folder}: has a {other.name}/ folder but no {missing}/ folder")
        if any(_is_picture(p) for p in other.iterdir()):
            raise DigitrecError(f"{other}: holds pictures but is not a digit folder (name each digit's "
                                f"folder 0-9: {folder}/0 … {folder}/9)")
    if not any(e.name in DIGIT_FOLDERS for e in folders):
        loose = sum(_is_picture(p) for p in folder.iterdir())
        hint = f" ({loose} pictures lie in {folder} itself)" if loose else ""
        raise DigitrecError(f"{folder}: no class sub-folders named 0-9{hint}; put each digit's pictures "
                            f"in {folder}/0 … {folder}/9")


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
    files, skipped = picture_files(folder)
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
