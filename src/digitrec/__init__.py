"""digitrec: recognise handwritten digits with convolutional networks."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Recognizer", "__version__"]

# Loaded on first use, so `import digitrec` (and every CLI start) does not import torch.
_LAZY = {"Recognizer": "digitrec.inference.recognizer"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
