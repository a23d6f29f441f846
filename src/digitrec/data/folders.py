"""Class folders: DIR/0 … DIR/9, one folder per digit, optionally under DIR/train/ and DIR/test/.

Every reader of class folders lists their pictures here, by one rule, so a picture counts (or is left
out, with its reason) the same way wherever it is read: `read_image_folder` for MNIST-style 28×28
files, `pictures.folders.read_pictures` for people's pictures of any size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitrec.data.formats import IMAGE_SUFFIXES
from digitrec.errors import DigitrecError
from digitrec.util import SIDE

SPLITS = ("train", "test")
DIGIT_FOLDERS = tuple("0123456789")
# what `digitrec predict` also reads when it finds it in a folder
PICTURE_SUFFIXES = IMAGE_SUFFIXES | {".tga", ".ico", ".jp2", ".heic"}


@dataclass(frozen=True)
class Skipped:
    """A picture left out, and why (one line)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def is_picture(path: Path) -> bool:
    return path.suffix.lower() in PICTURE_SUFFIXES and not path.name.startswith(".") and path.is_file()


def class_folder_files(folder: Path) -> tuple[list[tuple[Path, int]], list[Skipped]]:
    """Every picture in `folder`'s digit folders with its digit, sorted; and what is left out (pictures
    outside a digit folder, folders inside one). A layout that holds no digit folders is an error."""
    check_layout(folder)
    files, skipped = [], [Skipped(p, "not inside a digit folder (0-9), so its digit is unknown")
                          for p in sorted(folder.iterdir()) if is_picture(p)]
    for digit in DIGIT_FOLDERS:
        for entry in sorted((folder / digit).iterdir()) if (folder / digit).is_dir() else []:
            if is_picture(entry):
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
        if other.name in SPLITS:
            missing = next(s for s in SPLITS if s != other.name)
            raise DigitrecError(f"{folder}: has a {other.name}/ folder but no {missing}/ folder")
        if any(is_picture(p) for p in other.iterdir()):
            raise DigitrecError(f"{other}: holds pictures but is not a digit folder (name each digit's "
                                f"folder 0-9: {folder}/0 … {folder}/9)")
    if not any(e.name in DIGIT_FOLDERS for e in folders):
        loose = sum(is_picture(p) for p in folder.iterdir())
        hint = f" ({loose} pictures lie in {folder} itself)" if loose else ""
        raise DigitrecError(f"{folder}: no class sub-folders named 0-9{hint}; put each digit's pictures "
                            f"in {folder}/0 … {folder}/9")


def read_image_folder(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Class folders of MNIST-style 28×28 images, read as they are (no preprocessing): the reader
    `data.dataset.load` uses when it is given none. Any other size is an error naming the file."""
    from PIL import Image, UnidentifiedImageError

    files, _ = class_folder_files(Path(path))
    images = []
    for file, _digit in files:
        try:
            with Image.open(file) as img:
                arr = np.asarray(img.convert("L"), dtype=np.uint8)
        except (UnidentifiedImageError, OSError) as exc:
            raise DigitrecError(f"{file}: not a readable image ({exc})") from None
        if arr.shape != (SIDE, SIDE):
            raise DigitrecError(f"{file}: image is {arr.shape[1]}x{arr.shape[0]}, expected 28x28")
        images.append(arr)
    return np.stack(images), np.asarray([digit for _, digit in files], dtype=np.int64)
