"""Fitting what a model file says about its own probabilities, on the validation split only.

- The temperature: one number T, chosen to minimise the negative log-likelihood of the held-out
  validation pictures (digits, and non-digits for a model that can answer "not a digit"), applied at inference
  as softmax(log p / T) (models.calibration). Label smoothing, which the recipes use, leaves a
  network under-confident (a clear digit at 90%); T < 1 gives it back its confidence.
- The not-a-digit threshold: the lowest not-a-digit probability, at least one half, that says "not a
  digit" of at most `MAX_DIGITS_SAID_NOT_DIGIT` of the validation digits, and of at most
  `MAX_RESTYLED_SAID_NOT_DIGIT` of the validation digits redrawn with each writing habit of synth.styles
  (a crossed 7 or an open 4 is a digit; at one half a model said so of 0.85-0.95% of those,
  docs/honesty.md). Each habit's set is a tenth of the plain digits (about 500): a quarter of a percent
  of it is one picture, so under the plain budget the second least digit-like picture of any one habit
  set the threshold; each habit gets the goal's own budget (0.5% of MNIST's test digits) instead, two
  pictures in 500 (docs/writers.md: the study). The model file records it in its section `rejection` (a name
  files already carry; docs/glossary.md).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from digitrec.models.calibration import DEFAULT_NOT_DIGIT_THRESHOLD, NOT_A_DIGIT, with_temperature
from digitrec.training.metrics import ece, nll

MAX_DIGITS_SAID_NOT_DIGIT = 0.0025  # a quarter of a percent of validation digits, at most
MAX_RESTYLED_SAID_NOT_DIGIT = 0.005  # of each habit's restyled validation digits: the goal's 0.5%, at most


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimises the NLL of `labels` under (N, C) `probs`."""
    result = minimize_scalar(lambda log_t: nll(with_temperature(probs, float(np.exp(log_t))), labels),
                             bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def fit_not_digit_threshold(p_not_digit: np.ndarray, max_share: float = MAX_DIGITS_SAID_NOT_DIGIT) -> float:
    """The lowest threshold ≥ DEFAULT_NOT_DIGIT_THRESHOLD that says "not a digit" of at most `max_share`
    of these digits."""
    floor = DEFAULT_NOT_DIGIT_THRESHOLD
    candidates = np.concatenate([[floor], np.sort(p_not_digit[p_not_digit >= floor]) + 1e-6])
    for t in candidates:
        if (p_not_digit >= t).mean() <= max_share:
            return float(min(t, 1.0))
    return 1.0


def calibrate(raw_digits: np.ndarray, digit_labels: np.ndarray, raw_other: np.ndarray | None = None,
              raw_restyled: dict[str, np.ndarray] | None = None) -> dict:
    """Metadata for a model file: {"calibration": …, "rejection": …} from raw validation probabilities of
    digits (N, C) and, for a model that can say "not a digit", of non-digits (M, C) and of digits redrawn with each
    writing habit ({habit: (K, C)}; they set the threshold, not the temperature)."""
    probs, labels = raw_digits, digit_labels
    if raw_other is not None and len(raw_other):
        probs = np.concatenate([raw_digits, raw_other])
        labels = np.concatenate([digit_labels, np.full(len(raw_other), NOT_A_DIGIT)])
    t = fit_temperature(probs, labels)
    after = with_temperature(probs, t)
    meta = {"calibration": {
        "temperature": round(t, 5), "fitted_on": f"validation: {len(raw_digits)} digits"
        + (f" and {len(raw_other)} synthetic non-digits" if raw_other is not None else ""),
        "nll_before": round(nll(probs, labels), 5), "nll_after": round(nll(after, labels), 5),
        "ece_before": round(ece(probs, labels), 5), "ece_after": round(ece(after, labels), 5)}}
    if raw_digits.shape[1] > NOT_A_DIGIT:
        digits_p = with_temperature(raw_digits, t)[:, NOT_A_DIGIT]
        styled_p = {h: with_temperature(p, t)[:, NOT_A_DIGIT] for h, p in (raw_restyled or {}).items() if len(p)}
        threshold = max([fit_not_digit_threshold(digits_p)]
                        + [fit_not_digit_threshold(p, MAX_RESTYLED_SAID_NOT_DIGIT) for p in styled_p.values()])
        other_p = with_temperature(raw_other, t)[:, NOT_A_DIGIT] if raw_other is not None else np.zeros(0)
        meta["rejection"] = {"not_digit_threshold": round(threshold, 6),
                             "validation_digits_declined": round(float((digits_p >= threshold).mean()), 5),
                             "validation_non_digits_declined": round(float((other_p >= threshold).mean()), 5)
                             if len(other_p) else None}
        if styled_p:
            meta["rejection"]["validation_restyled_declined"] = {
                h: round(float((p >= threshold).mean()), 5) for h, p in styled_p.items()}
    return meta
