"""The one place that decides where tensors live and how many CPU threads torch uses."""

from __future__ import annotations

import torch

from .errors import DigitrecError

DEVICES = ("auto", "cpu", "cuda")


def pick_device(name: str = "auto") -> torch.device:
    """auto → CUDA when present, else CPU; asking for CUDA without one is a user error."""
    if name not in DEVICES:
        raise DigitrecError(f"--device: unknown device {name!r}, expected one of {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise DigitrecError("--device: cuda requested but no CUDA device is available")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def set_threads(threads: int | None) -> None:
    """Fix torch's intra-op threads (None leaves torch's default: one per core)."""
    if threads is not None:
        if threads < 1:
            raise DigitrecError(f"--threads: must be at least 1, got {threads}")
        torch.set_num_threads(threads)
