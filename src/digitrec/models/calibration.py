"""What a model's probabilities mean: temperature calibration and the answer "not a digit".

A model file may carry, in its metadata, a temperature fitted on the validation split
(`training.calibration`) and the threshold above which the "not a digit" output wins
(`rejection`). Every backend applies the temperature to what its network computes
(`calibrated`), so torch, ONNX float and ONNX int8 give the same calibrated answers; files
without it (older ones) are used as they are and say so (`describe`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from digitrec.util import NOT_A_DIGIT  # the index of the extra output of models trained with non-digits

DIGITS = 10
# the not-a-digit threshold when the model file records none: the answer is "not a digit" at or above it
DEFAULT_NOT_DIGIT_THRESHOLD = 0.5


def temperature(metadata: dict[str, Any]) -> float | None:
    value = (metadata.get("calibration") or {}).get("temperature")
    return float(value) if value else None


def calibrated(probs: np.ndarray, metadata: dict[str, Any]) -> np.ndarray:
    """(N, C) probabilities → the same, softened or sharpened by the file's temperature T:
    softmax(log p / T), which for a network's softmax output is softmax(logits / T)."""
    t = temperature(metadata)
    if t is None or len(probs) == 0:
        return probs
    return with_temperature(probs, t)


def with_temperature(probs: np.ndarray, t: float) -> np.ndarray:
    logp = np.log(np.clip(probs.astype(np.float64), 1e-30, None)) / t
    logp -= logp.max(axis=1, keepdims=True)
    out = np.exp(logp)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def not_digit_threshold(metadata: dict[str, Any]) -> float:
    """The not-a-digit threshold the model file records (its section keeps the name `rejection`, which
    model files already carry: docs/glossary.md)."""
    return float((metadata.get("rejection") or {}).get("not_digit_threshold", DEFAULT_NOT_DIGIT_THRESHOLD))


def said_not_digit(probs: np.ndarray, threshold: float) -> np.ndarray:
    """(N,) bool: the pictures a model with a not-a-digit output calls no digit."""
    if probs.shape[1] <= NOT_A_DIGIT:
        return np.zeros(len(probs), bool)
    return probs[:, NOT_A_DIGIT] >= threshold


def describe(metadata: dict[str, Any]) -> str:
    t = temperature(metadata)
    if t is None:
        return "uncalibrated (the model file holds no temperature)"
    return f"calibrated (temperature {t:.3f}, fitted on validation)"
