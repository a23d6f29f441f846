"""Inference backends: a model file → something that maps uint8 digits to probabilities.

The recogniser, `evaluate`, the server and the ONNX checks all call
`Backend.probabilities`, so there is one inference path per backend. Backends
other than torch register themselves here (see `register_backend`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch

from digitrec.errors import DigitrecError
from digitrec.models import list_models
from digitrec.models.calibration import calibrated
from digitrec.models.modelfile import load_model
from digitrec.models.predict import predict_proba
from digitrec.util.device import pick_device


class Backend(Protocol):
    name: str
    metadata: dict[str, Any]

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) uint8 (ink bright) → (N, C) float32 probabilities, calibrated as the model file
        says (models.calibration): C is 10, or 11 for a model with the answer "not a digit"."""
        ...


class TorchBackend:
    """Eager PyTorch on the chosen device."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, metadata: dict[str, Any], device: str = "auto") -> None:
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.metadata = metadata

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> "TorchBackend":
        model, meta = load_model(path)
        return cls(model, meta, device)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        return calibrated(predict_proba(self.model, images, device=self.device), self.metadata)


_LOADERS: dict[str, Callable[..., Backend]] = {"torch": TorchBackend.load}


def register_backend(name: str, loader: Callable[..., Backend]) -> None:
    _LOADERS[name] = loader


def list_backends() -> list[str]:
    _import_optional()
    return sorted(_LOADERS)


def load_backend(path: str | Path, backend: str = "torch", device: str = "auto") -> Backend:
    """Open a model file with the named backend."""
    _import_optional()
    if backend not in _LOADERS:
        raise DigitrecError(f"unknown backend {backend!r}; choose from {', '.join(sorted(_LOADERS))}", field="backend")
    if backend == "torch" and str(path).lower().endswith(".onnx"):
        raise DigitrecError(f"{path}: an ONNX file; open it with --backend onnx")
    opened = _LOADERS[backend](path, device=device)
    if opened.metadata.get("arch") in list_models("line"):
        raise DigitrecError(f"{path}: a line reader ({opened.metadata['arch']}) reads whole numbers, not single "
                            "digits; it is the number reader's own model, not a --model", field="model")
    return opened


def _import_optional() -> None:
    """Backends living in their own modules register on import; absent ones are skipped."""
    for module in ("onnx_backend",):
        try:
            __import__(f"{__package__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{module}":
                raise
