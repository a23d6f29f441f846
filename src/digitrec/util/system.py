"""What this machine gives us: the cores we may use and the per-user cache folder."""

from __future__ import annotations

import os
from pathlib import Path


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask, which containers and `taskset` narrow),
    not the machine's total: thread pools sized from the total oversubscribe a 2-core slice."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS has no affinity masks
        return os.cpu_count() or 1


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/digitrec, else ~/.cache/digitrec: downloaded MNIST, compiled kernels."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "digitrec"
