"""Fitting the temperature and the not-a-digit threshold on held-out pictures."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.models.calibration import NOT_A_DIGIT, with_temperature
from digitrec.training.calibration import (
    MAX_RESTYLED_SAID_NOT_DIGIT,
    calibrate,
    fit_not_digit_threshold,
    fit_temperature,
)
from digitrec.training.metrics import coverage_table, ece, nll, reliability


def sampled(n: int, temperature: float, classes: int = 10, seed: int = 0):
    """Probabilities a network reports (softmax of its logits) and labels drawn from softmax(logits / T):
    the network is off by exactly `temperature`."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2.5, size=(n, classes))
    true = np.exp(logits / temperature)
    true /= true.sum(1, keepdims=True)
    labels = np.array([rng.choice(classes, p=p) for p in true])
    reported = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return reported.astype(np.float32), labels


@pytest.mark.parametrize("t", [0.5, 1.0, 2.0])
def test_the_fitted_temperature_is_the_one_the_labels_follow(t):
    probs, labels = sampled(20_000, t)
    assert fit_temperature(probs, labels) == pytest.approx(t, rel=0.05)
    fitted = with_temperature(probs, fit_temperature(probs, labels))
    assert nll(fitted, labels) <= nll(probs, labels) + 1e-9
    assert ece(fitted, labels) < 0.02


def test_ece_reliability_and_coverage_by_hand():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]], np.float32)
    labels = np.array([0, 1, 0, 0])
    rows = reliability(probs, labels, bins=10)
    assert [(round(c, 2), a, n) for c, a, n in rows] == [(0.6, 1.0, 2), (0.9, 0.5, 2)]
    assert ece(probs, labels, bins=10) == pytest.approx((2 * 0.4 + 2 * 0.4) / 4)
    table = {r["threshold"]: r for r in coverage_table(probs, labels, (0.0, 0.7))}
    assert table[0.0]["answered"] == 1.0 and table[0.0]["error"] == pytest.approx(0.25)
    assert table[0.7]["answered"] == 0.5 and table[0.7]["error"] == pytest.approx(0.5)


def test_the_not_digit_threshold_keeps_to_its_budget_of_digits():
    p = np.concatenate([np.zeros(990), np.linspace(0.55, 0.95, 10)])  # ten digits look like no digit
    t = fit_not_digit_threshold(p, max_share=0.005)
    assert (p >= t).mean() <= 0.005 and (p >= t).sum() == 5 and t >= 0.5
    assert fit_not_digit_threshold(np.zeros(100)) == 0.5  # nothing to fear: the plain majority rule


def validation_set(n: int, n_others: int, p_not: float, seed: int):
    """Digits of an 11-output network that is off by a temperature of 0.6, and non-digits it scores p_not."""
    digits, labels = sampled(n, 0.6, classes=11, seed=seed)
    others = np.full((n_others, 11), (1 - p_not) / 10, np.float32)
    others[:, NOT_A_DIGIT] = p_not
    return digits, labels % 10, others


def test_calibrate_writes_the_metadata_a_model_file_keeps():
    digits, labels, others = validation_set(3000, 500, 0.9, seed=1)
    meta = calibrate(digits, labels, others)
    assert set(meta) == {"calibration", "rejection"}
    cal = meta["calibration"]
    assert cal["nll_after"] <= cal["nll_before"]
    assert cal["fitted_on"] == "validation: 3000 digits and 500 synthetic non-digits"
    assert meta["rejection"]["validation_digits_declined"] <= 0.0025
    assert "rejection" not in calibrate(digits[:, :10], labels)  # a 10-class model cannot say "not a digit"


def test_restyled_digits_raise_the_threshold_until_they_too_are_digits():
    """A crossed 7 is a digit: the threshold calls "not a digit" at most the budget of each habit's digits."""
    labels = np.arange(3000) % 10
    digits = np.full((3000, 11), 0.01, np.float32)
    digits[np.arange(3000), labels] = 0.89  # digits, hardly "not a digit" ...
    labels[::9] = (labels[::9] + 1) % 10  # ... and right 89% of the time, as 0.89 says (a temperature near 1)
    others = np.full((500, 11), 0.005, np.float32)
    others[:, NOT_A_DIGIT] = 0.95
    crossed = np.full((400, 11), 0.01, np.float32)
    crossed[:, 7], crossed[:, NOT_A_DIGIT] = 0.89, 0.01
    crossed[:40, 7], crossed[:40, NOT_A_DIGIT] = 0.09, 0.81  # a tenth of the crossed 7s look like no digit
    crossed[:40, NOT_A_DIGIT] += np.linspace(0, 0.08, 40)
    crossed[:40, 7] -= np.linspace(0, 0.08, 40)
    plain = calibrate(digits, labels, others)["rejection"]
    meta = calibrate(digits, labels, others, {"7-crossbar": crossed})["rejection"]
    assert plain["not_digit_threshold"] == 0.5
    assert meta["not_digit_threshold"] > 0.5
    assert meta["validation_restyled_declined"]["7-crossbar"] <= MAX_RESTYLED_SAID_NOT_DIGIT
    assert meta["validation_non_digits_declined"] == 1.0
    assert "validation_restyled_declined" not in plain


def test_each_habit_may_have_the_goals_half_percent_called_not_a_digit_plain_digits_a_quarter():
    """A habit's few hundred digits may have 0.5% called "not a digit" (two in 400), plain digits 0.25% (one in
    400): a quarter of a percent of a habit's set would be one picture, and one picture would set the threshold."""
    labels = np.arange(400) % 10
    clean = np.full((400, 11), 0.005, np.float32)
    clean[np.arange(400), labels] = 0.945
    odd = clean.copy()
    odd[:4, NOT_A_DIGIT] = [0.6, 0.7, 0.8, 0.9]  # four pictures that look like no digit, sure to these degrees
    odd[np.arange(4), labels[:4]] = 0.95 - odd[:4, NOT_A_DIGIT]
    others = np.full((100, 11), 0.005, np.float32)
    others[:, NOT_A_DIGIT] = 0.95
    as_habit = calibrate(clean, labels, others, {"4-open": odd})["rejection"]
    as_plain = calibrate(odd, labels, others)["rejection"]
    assert as_habit["validation_restyled_declined"]["4-open"] == MAX_RESTYLED_SAID_NOT_DIGIT == 0.005  # two
    assert as_plain["validation_digits_declined"] == 0.0025  # the same four among plain digits: one


def test_the_metadata_holds_the_fitted_figures_to_five_places_and_the_backends_read_them():
    """What a model file keeps is what was fitted, rounded to 5 places, under the names inference reads."""
    from digitrec.models.calibration import calibrated
    from digitrec.models.calibration import not_digit_threshold as file_threshold

    digits, labels, others = validation_set(2000, 300, 0.8, seed=3)
    meta = calibrate(digits, labels, others)
    probs = np.concatenate([digits, others])
    every = np.concatenate([labels, np.full(300, NOT_A_DIGIT)])
    t = fit_temperature(probs, every)
    after = with_temperature(probs, t)
    assert meta["calibration"] == {
        "temperature": round(t, 5), "fitted_on": "validation: 2000 digits and 300 synthetic non-digits",
        "nll_before": round(nll(probs, every), 5), "nll_after": round(nll(after, every), 5),
        "ece_before": round(ece(probs, every), 5), "ece_after": round(ece(after, every), 5)}
    np.testing.assert_allclose(calibrated(digits, meta), with_temperature(digits, round(t, 5)), atol=1e-6)
    rejection = meta["rejection"]
    assert file_threshold(meta) == rejection["not_digit_threshold"]
    p_digits = with_temperature(digits, t)[:, NOT_A_DIGIT]
    p_others = with_temperature(others, t)[:, NOT_A_DIGIT]
    assert rejection["validation_digits_declined"] == round(float((p_digits >= file_threshold(meta)).mean()), 5)
    assert rejection["validation_non_digits_declined"] == round(float((p_others >= file_threshold(meta)).mean()), 5)
    only_digits = calibrate(digits[:, :10] / digits[:, :10].sum(1, keepdims=True), labels)
    assert only_digits["calibration"]["fitted_on"] == "validation: 2000 digits"
