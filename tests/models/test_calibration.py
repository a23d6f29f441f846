"""Temperature calibration and the "not a digit" decision, as every backend applies them."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.models import calibration


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_temperature_rescales_the_logits():
    logits = np.random.default_rng(0).normal(0, 3, size=(50, 11))
    probs = softmax(logits).astype(np.float32)
    for t in (0.5, 1.0, 2.0):
        np.testing.assert_allclose(calibration.with_temperature(probs, t), softmax(logits / t), atol=1e-5)
    sharper = calibration.with_temperature(probs, 0.5)
    assert (sharper.max(1) >= probs.max(1) - 1e-6).all()  # T < 1 is more confident, never less
    assert (sharper.argmax(1) == probs.argmax(1)).all()  # and never changes the answer


def test_a_file_without_a_temperature_is_used_as_it_is():
    probs = softmax(np.random.default_rng(1).normal(size=(4, 10))).astype(np.float32)
    assert calibration.calibrated(probs, {}) is probs
    assert calibration.describe({}).startswith("uncalibrated")
    meta = {"calibration": {"temperature": 0.5}}
    assert not np.allclose(calibration.calibrated(probs, meta), probs)
    assert calibration.describe(meta).startswith("calibrated (temperature 0.500")


def test_declining_needs_the_extra_output_and_its_threshold():
    probs = np.array([[0.05] * 10 + [0.5], [0.09] * 10 + [0.1]], np.float32)
    assert calibration.said_not_digit(probs, 0.5).tolist() == [True, False]
    assert calibration.said_not_digit(probs, 0.6).tolist() == [False, False]
    assert calibration.said_not_digit(probs[:, :10], 0.0).tolist() == [False, False]  # 10 classes: never "not a digit"
    assert calibration.not_digit_threshold({}) == calibration.DEFAULT_NOT_DIGIT_THRESHOLD
    assert calibration.not_digit_threshold({"rejection": {"not_digit_threshold": 0.8}}) == pytest.approx(0.8)
