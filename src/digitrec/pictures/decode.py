"""Opening a user's picture: any source, any Pillow format and mode → one grey float array.

Everything that can go wrong with a file (not an image, truncated, zero bytes,
a decompression bomb) becomes a `DigitrecError` naming the file, so the CLI
can report it in one line and carry on with the next file.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from digitrec.data.formats import read_file
from digitrec.errors import DigitrecError

ImageSource = Union[str, Path, bytes, bytearray, Image.Image, np.ndarray]

# Pictures larger than this (pixels) are refused before decoding: a 50,000×50,000 PNG
# header would otherwise make Pillow allocate 2.5 GB. 40 MP covers any phone photo.
MAX_PIXELS = 40_000_000
# Work on at most this many pixels along the longer side: a digit filling a fifth of a
# photo is still 128 pixels tall, and preprocessing stays at milliseconds.
WORK_SIDE = 640
ORIENTATION = 0x0112  # the EXIF tag of the camera's rotation


def describe(source: ImageSource) -> str:
    """A short name for `source` in messages: the path, or the kind of object."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, (bytes, bytearray)):
        return f"<{len(source)} bytes>"
    if isinstance(source, Image.Image):
        return f"<PIL {source.mode} {source.width}x{source.height}>"
    if isinstance(source, np.ndarray):
        return f"<array {source.dtype} {'x'.join(map(str, source.shape))}>"
    return f"<{type(source).__name__}>"


def open_image(source: ImageSource, name: str | None = None) -> Image.Image:
    """Decode `source` into a loaded PIL image with its EXIF rotation applied."""
    return open_sized(source, name)[0]


def open_sized(source: ImageSource, name: str | None = None,
               draft: int = WORK_SIDE) -> tuple[Image.Image, tuple[int, int]]:
    """`open_image`, and the picture's full (width, height) after EXIF rotation: a JPEG is decoded at a
    reduced scale that keeps at least `draft` pixels along each side, so the image may be smaller."""
    name = name or describe(source)
    if isinstance(source, Image.Image):
        return _check_size(source, name), source.size
    if isinstance(source, np.ndarray):
        img = Image.fromarray(array_to_gray(source, name))
        return img, img.size
    if isinstance(source, (str, Path)):
        source = read_file(Path(source))
    if not isinstance(source, (bytes, bytearray)):
        raise DigitrecError(f"{name}: expected a path, bytes, a PIL image or a numpy array")
    if not source:
        raise DigitrecError(f"{name}: empty file (0 bytes)")
    return _decode(bytes(source), name, draft)


def _decode(raw: bytes, name: str, draft: int = WORK_SIDE) -> tuple[Image.Image, tuple[int, int]]:
    """Decode with the pixel cap enforced; bombs, truncation and junk become DigitrecError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
            _check_size(img, name)
            width, height = img.size
            img.draft("L", (draft, draft))  # JPEG: decode at a reduced scale, much faster
            img.load()
            if img.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8):  # turned a quarter: width and height swap
                width, height = height, width
            ImageOps.exif_transpose(img, in_place=True)  # in place: no copy of the pixels
            return img, (width, height)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DigitrecError(f"{name}: image is too large (more than {MAX_PIXELS:,} pixels; "
                            "possibly a decompression bomb)") from None
    except UnidentifiedImageError:
        raise DigitrecError(f"{name}: not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DigitrecError(f"{name}: truncated or corrupt image ({exc})") from None


def _check_size(img: Image.Image, name: str) -> Image.Image:
    if img.width * img.height > MAX_PIXELS:
        raise DigitrecError(f"{name}: image is too large ({img.width}x{img.height}, more than {MAX_PIXELS:,} "
                            "pixels; possibly a decompression bomb)")
    if img.width < 1 or img.height < 1:
        raise DigitrecError(f"{name}: image has no pixels")
    return img


def array_to_gray(arr: np.ndarray, name: str) -> np.ndarray:
    """(H, W), (H, W, 1|3|4) of any numeric dtype → (H, W) or (H, W, 3|4) uint8 for Pillow."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or 0 in arr.shape:
        raise DigitrecError(f"{name}: expected an (H, W), (H, W, 3) or (H, W, 4) array")
    if arr.size > MAX_PIXELS * 4:
        raise DigitrecError(f"{name}: array is larger than {MAX_PIXELS:,} pixels")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if not np.issubdtype(arr.dtype, np.number):
        raise DigitrecError(f"{name}: array of {arr.dtype} is not an image")
    arr = np.nan_to_num(arr.astype(np.float64))
    top = 1.0 if arr.max() <= 1.0 and arr.min() >= 0.0 else 255.0 if arr.max() <= 255 else float(arr.max())
    return (np.clip(arr / top, 0, 1) * 255 + 0.5).astype(np.uint8)


def to_gray(img: Image.Image, max_height: int | None = None, max_side: int = WORK_SIDE) -> np.ndarray:
    """Any mode → (H, W) float32 in [0, 1], shrunk to at most `max_side` along its longer side (and
    `max_height` tall: a line of digits is read at its height, whatever its length); transparency
    flattened onto a background that contrasts with the opaque pixels (strokes drawn only in alpha show)."""
    return gray_levels(img, max_height, max_side)[0]


def gray_levels(img: Image.Image, max_height: int | None = None,
                max_side: int = WORK_SIDE) -> tuple[np.ndarray, np.ndarray | None]:
    """`to_gray`, and the picture's 8-bit grey levels (H, W) uint8 when the grey values are exactly
    levels / 255 (every picture without transparency or 16-bit depth), else None. With the levels,
    preprocessing counts grey levels with one histogram of the picture instead of per-pixel passes."""
    img = _shrink(img, max_side, max_height)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        return ((arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)), None
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = np.asarray(img.convert("RGBA"))
        if rgba[..., 3].min() < 255:
            return _flatten_alpha(rgba.astype(np.float32) / 255.0), None
        # Opaque (a canvas's PNG): its grey levels as for RGB, with Pillow's integer formula. The float
        # luminance would differ by a rounding that depends on the BLAS kernel, and the drawing page
        # (static/preprocess.js) must reproduce these levels exactly to give the server's answers.
        img = img.convert("RGB")
    levels = np.asarray(img if img.mode == "L" else img.convert("L"))
    return levels.astype(np.float32) / 255.0, levels


def _shrink(img: Image.Image, max_side: int = WORK_SIDE, max_height: int | None = None) -> Image.Image:
    scale = min(1.0, max_side / max(img.size), (max_height or img.height) / img.height)
    if scale >= 1.0:
        return img
    if img.mode not in ("L", "RGB", "RGBA", "LA", "F", "I"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.BOX)


def _flatten_alpha(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) float → (H, W) grey composited over white, or over black when the opaque ink is light."""
    lum = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    alpha = rgba[..., 3]
    if alpha.min() > 0.98:
        return lum
    opaque = alpha > 0.5
    ink_is_dark = not opaque.any() or float(np.median(lum[opaque])) < 0.5
    background = 1.0 if ink_is_dark else 0.0
    return lum * alpha + background * (1.0 - alpha)
