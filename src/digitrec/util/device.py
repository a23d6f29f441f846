"""The one place that decides where tensors live and how many CPU threads torch uses."""

from __future__ import annotations

import ctypes
import sys

import torch

from digitrec.errors import DigitrecError

DEVICES = ("auto", "cpu", "cuda")


def pick_device(name: str = "auto") -> torch.device:
    """auto → CUDA when present, else CPU; asking for CUDA without one is a user error."""
    if name not in DEVICES:
        raise DigitrecError(f"unknown device {name!r}, expected one of {', '.join(DEVICES)}", field="device")
    if name == "cuda" and not torch.cuda.is_available():
        raise DigitrecError("cuda requested but no CUDA device is available", field="device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_tuned = False


def keep_freed_memory() -> None:
    """Let glibc reuse freed memory for tensors up to 32 MB instead of handing it back to the OS.

    Why: by default glibc gives each large tensor fresh pages from mmap and returns them on free,
    so every training step faults all its activations in again, 4 KB at a time. A conv2-fc64 step
    at batch 64 took ~930 page faults (about 2 ms of kernel time, as much as the convolutions);
    with this, none. Elsewhere than glibc (macOS, musl) it does nothing."""
    global _tuned
    if _tuned or not sys.platform.startswith("linux"):
        return
    _tuned = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # the largest threshold glibc accepts on 64-bit
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):
        pass


def set_threads(threads: int | None) -> None:
    """Fix torch's intra-op threads (None leaves torch's default: one per core), and keep freed
    memory for reuse (see keep_freed_memory)."""
    keep_freed_memory()
    if threads is not None:
        if threads < 1:
            raise DigitrecError(f"must be at least 1, got {threads}", field="threads")
        torch.set_num_threads(threads)
