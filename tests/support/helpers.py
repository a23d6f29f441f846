"""Small utilities the tests share: running the CLI as a user would, writing test files."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
# A small, quick conv2-fc64 run (the conftest's quick_run): 2,000 training images, 500 held out, one thread.
QUICK_TRAIN = ["--model", "conv2-fc64", "--no-report", "--subset", "2000", "--val-size", "500", "--batch-size", "64",
               "--threads", "1"]


class CliResult(NamedTuple):
    """What a user sees of one command: its exit code, stdout and stderr (a tuple, so it unpacks)."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: object, cwd: Path | None = None, timeout: float = 600, in_process: bool = False) -> CliResult:
    """Run `digitrec ARGS` as a user would: in a subprocess (`python -m digitrec`, exactly as a shell
    runs it), or with `in_process=True` through `digitrec.cli.main` in this process (no interpreter
    start-up, and a model loaded once stays cached; for the many quick calls of one test)."""
    argv = [str(a) for a in args]
    if in_process:
        assert cwd is None, "in-process runs use the current folder"
        from digitrec.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse's own exits (--help, --version, usage errors)
                code = exc.code if isinstance(exc.code, int) else 2
        return CliResult(code, out.getvalue(), err.getvalue())
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "-m", "digitrec", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return CliResult(done.returncode, done.stdout, done.stderr)


def assert_user_error(result: CliResult, *fragments: str) -> None:
    """Exit 2, one line on stderr that starts with `digitrec: error:` and names what is wrong."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("digitrec: error:"), lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def bad_cases(*makers: Callable) -> list:
    """pytest params of bad-input makers, each named for its maker: `bad_empty_csv` runs as "empty-csv"."""
    return [pytest.param(make, id=make.__name__.removeprefix("bad_").replace("_", "-")) for make in makers]


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in the IDX format MNIST uses."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    data = idx_bytes(array)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def picture_folder(root: Path, images: np.ndarray, labels: np.ndarray, per_digit: int = 3, side: int = 64) -> Path:
    """root/<digit>/<i>.png: the first `per_digit` digits of each label, as side×side pictures of dark ink
    on white paper (what a person's scans look like, not MNIST's 28×28)."""
    from PIL import Image

    for digit in range(10):
        (root / str(digit)).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(labels == digit)[:per_digit]:
            big = Image.fromarray(255 - images[i]).resize((side, side), Image.Resampling.BICUBIC)
            big.save(root / str(digit) / f"{i:05d}.png")
    return root
