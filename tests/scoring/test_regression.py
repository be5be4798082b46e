"""The penalised fit under calibration, against scikit-learn and against its own prior."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from scoring.regression import choose_strength, fit_toward, slope


def data(seed: int, rows: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Three standardised columns: a strong signal, a weak one, noise."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 3))
    log_odds = -1.0 + 1.5 * features[:, 0] + 0.4 * features[:, 1]
    target = (rng.random(rows) < 1 / (1 + np.exp(-log_odds))).astype(int)
    return features, target


@pytest.mark.parametrize("strength", [0.01, 0.1, 1.0])
def test_a_pull_toward_zero_is_scikit_learns_ridge(strength: float) -> None:
    features, target = data(1)
    fit = fit_toward(features, target, np.zeros(3), strength)
    reference = LogisticRegression(C=strength, tol=1e-10, max_iter=10_000).fit(features, target)
    assert fit.coefficients == pytest.approx(reference.coef_[0], abs=1e-5)
    assert fit.intercept == pytest.approx(reference.intercept_[0], abs=1e-5)


def test_a_strong_pull_stays_at_the_prior_and_a_weak_one_follows_the_data() -> None:
    features, target = data(2)
    prior = np.asarray([0.0, 2.0, -1.0])  # wrong on purpose
    held = fit_toward(features, target, prior, 1e-6)
    assert held.coefficients == pytest.approx(prior, abs=1e-3)
    free = fit_toward(features, target, prior, 1e6)
    assert free.coefficients[0] == pytest.approx(1.5, abs=0.3)
    assert abs(free.coefficients[2]) < 0.3
    assert abs(free.z_scores[0]) > 5 and abs(free.z_scores[2]) < 3


def test_a_nearly_separable_rule_does_not_make_the_fit_overshoot() -> None:
    """A column that fires for three converters only: the weak pull lets its coefficient
    grow large, but the damped steps still settle on a finite answer."""
    features, target = data(3)
    rare = np.zeros((len(target), 1))
    rare[np.flatnonzero(target)[:3], 0] = 1.0
    fit = fit_toward(np.hstack([features, rare * 20]), target, np.zeros(4), 1e3)
    assert np.all(np.isfinite(fit.coefficients)) and fit.coefficients[3] > 0


def test_cross_validation_finds_signal_and_says_when_there_is_none() -> None:
    features, target = data(4)
    folds = np.arange(len(target)) % 5
    found = choose_strength(features, target, np.zeros(3), folds)
    assert found.beats_base_rate
    noise = np.random.default_rng(5).random(len(target)) < 0.3
    none = choose_strength(features, noise.astype(int), np.zeros(3), folds)
    assert not none.beats_base_rate
    assert none.deviance >= none.base_deviance


def test_the_slope_of_a_total_that_ranks_is_positive_and_a_flat_one_zero() -> None:
    features, target = data(6)
    assert slope(features[:, 0] * 10, target) == pytest.approx(0.15, abs=0.04)
    assert slope(np.full(len(target), 7.0), target) == 0.0
