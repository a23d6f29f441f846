"""Crash-safe writes: write to a temporary name beside the target, then rename.

A reader (or a resumed run) therefore sees either the old file or the new
one, never half of one, even if the process is killed mid-write. The checks
below turn an output path that cannot be written into a one-line error before
any work is done, rather than a traceback after it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Iterator

from digitrec.errors import DigitrecError

# A full disk (ENOSPC), a full quota (EDQUOT) or a file-size limit (EFBIG): space may come back.
NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class CannotWrite(DigitrecError, OSError):
    """A file could not be written (a full disk, a file-size limit, a read-only or vanished folder).
    `atomic_path` raises it after removing its temporary file, so the file it would have replaced is
    left as it was; `no_space` tells a full disk or a limit apart from other causes. A DigitrecError,
    so that a command reports it in one line; an OSError too, so that code that treats a write as
    optional (a cache) and catches OSError goes on as before."""

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(f"{path}: cannot write this file ({error.strerror or error}); the previous one, if any, "
                         "is left as it was")
        self.path, self.errno, self.strerror = path, error.errno, error.strerror

    @property
    def no_space(self) -> bool:
        return self.errno in NO_SPACE


@contextlib.contextmanager
def atomic_path(path: str | Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path; on success it is renamed onto `path`, on failure removed. An OSError while
    writing (a full disk: ENOSPC; past a file-size limit: EFBIG) becomes a one-line `CannotWrite`."""
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        os.chmod(tmp, mode)  # mkstemp makes 0600; these files are meant to be shared
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise CannotWrite(path, exc) from exc
        raise


def atomic_write(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def remove_stale_temporaries(directory: str | Path) -> list[Path]:
    """Delete the temporary files `atomic_path` leaves when its process is killed mid-write.

    Why: a SIGKILL skips the cleanup above, and a resumed run would otherwise keep a hidden,
    half-written copy of a checkpoint beside the real one for good. Only a process that owns
    `directory` (a resumed run) should call this."""
    stale = [p for p in Path(directory).glob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def check_writable_dir(path: str | Path, field: str | None = None) -> Path:
    """Prove that folder `path` can be created (with its parents) and written in, leaving no trace;
    else a one-line DigitrecError naming `field`. Called before training or loading data, so a typo
    in --out costs nothing, and a run that then fails leaves no empty folder behind."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DigitrecError(f"{path}: exists and is not a folder", field=field)
    created: list[Path] = []
    try:
        for folder in reversed([p for p in (path, *path.parents) if not p.exists()]):
            folder.mkdir()
            created.append(folder)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".digitrec-write-test.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DigitrecError(f"{path}: cannot create or write this folder ({reason})", field=field) from None
    finally:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
    return path


def check_writable_file(path: str | Path, field: str | None = None) -> Path:
    """The folder of output file `path` must be writable, and `path` itself must not be a folder."""
    path = Path(path)
    if path.is_dir():
        raise DigitrecError(f"{path}: is a folder, expected a file name", field=field)
    check_writable_dir(path.parent if str(path.parent) else Path("."), field=field)
    return path
