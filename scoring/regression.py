"""Logistic regression pulled toward a prior: the numbers under `scoring.calibrate`.

A ridge penalty that pulls each coefficient toward a given value (the model's own points
in log-odds) instead of toward 0, fitted by damped Newton steps, and the penalty's
strength chosen by cross-validation over folds of contacts. Pure numpy: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STRENGTHS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
"""Inverse penalty strengths (on standardised features) cross-validation chooses among:
from a pull that outweighs a few thousand examples to one a few hundred outweigh."""
_STEPS = 100
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Fit:
    """An intercept, a coefficient per standardised column, and their Wald z-scores."""

    intercept: float
    coefficients: np.ndarray
    z_scores: np.ndarray

    def log_odds(self, standard: np.ndarray) -> np.ndarray:
        return np.asarray(self.intercept + standard @ self.coefficients, dtype=float)


def fit_toward(standard: np.ndarray, target: np.ndarray, prior: np.ndarray, strength: float) -> Fit:
    """Maximise log-likelihood - |beta - prior|^2 / (2 x strength); the intercept is free.

    Newton steps, each halved until the penalised loss goes down, so that a rule firing
    for a handful of contacts (nearly separable) cannot make a step overshoot.
    """
    rows, columns = standard.shape
    design = np.column_stack([np.ones(rows), standard])
    centre = np.concatenate([[0.0], prior])
    penalty = np.eye(columns + 1) / strength
    penalty[0, 0] = 0.0
    share = float(np.clip(target.mean(), 1e-6, 1 - 1e-6))
    theta = centre.copy()
    theta[0] = np.log(share / (1 - share))
    loss = _loss(design, target, theta, penalty, centre)
    for _ in range(_STEPS):
        chance = _sigmoid(design @ theta)
        gradient = design.T @ (target - chance) - penalty @ (theta - centre)
        step = np.linalg.lstsq(_curvature(design, chance, penalty), gradient, rcond=None)[0]
        size = 1.0
        while True:
            candidate = theta + size * step
            new_loss = _loss(design, target, candidate, penalty, centre)
            if new_loss <= loss or size < 1e-6:
                break
            size /= 2
        settled = loss - new_loss < _TOLERANCE * (1 + abs(loss))
        theta, loss = candidate, new_loss
        if settled:
            break
    curvature = _curvature(design, _sigmoid(design @ theta), penalty)
    errors = np.sqrt(np.clip(np.diag(np.linalg.pinv(curvature)), 1e-300, None))[1:]
    return Fit(float(theta[0]), theta[1:], theta[1:] / errors)


@dataclass(frozen=True)
class Choice:
    """The strength cross-validation chose, its held-out deviance, and the deviance of
    the base rate alone (an intercept fitted on the other folds) on the same folds."""

    strength: float
    deviance: float
    base_deviance: float

    @property
    def beats_base_rate(self) -> bool:
        return self.deviance < self.base_deviance


def choose_strength(
    standard: np.ndarray,
    target: np.ndarray,
    prior: np.ndarray,
    folds: np.ndarray,
    strengths: Sequence[float] = STRENGTHS,
) -> Choice:
    """The strength whose fits predict the held-out folds best (least deviance).

    A fold whose others hold one class only is skipped: it has nothing to learn from. On
    a tie, the stronger pull: the simpler answer.
    """
    usable = [
        (folds == fold, folds != fold)
        for fold in np.unique(folds)
        if target[folds != fold].min() != target[folds != fold].max()
    ]
    base = sum(
        _deviance(target[held], np.full(int(held.sum()), float(target[rest].mean())))
        for held, rest in usable
    )
    best: tuple[float, float] | None = None
    for strength in strengths:
        deviance = 0.0
        for held, rest in usable:
            fit = fit_toward(standard[rest], target[rest], prior, strength)
            deviance += _deviance(target[held], _sigmoid(fit.log_odds(standard[held])))
        if best is None or deviance < best[0]:
            best = (deviance, strength)
    if best is None:
        return Choice(strengths[0], base, base)
    return Choice(best[1], best[0], base)


def _deviance(outcome: np.ndarray, chance: np.ndarray) -> float:
    chance = np.clip(chance, 1e-12, 1 - 1e-12)
    return -float(np.sum(outcome * np.log(chance) + (1 - outcome) * np.log(1 - chance)))


def slope(totals: np.ndarray, target: np.ndarray) -> float:
    """Log-odds per point of `totals` (a one-column, barely penalised fit); 0 if flat."""
    spread = float(totals.std())
    if spread == 0:
        return 0.0
    standard = ((totals - totals.mean()) / spread)[:, None]
    fit = fit_toward(standard, target, np.zeros(1), 1e6)
    return float(fit.coefficients[0]) / spread


def _curvature(design: np.ndarray, chance: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """The penalised loss's second derivative at the fitted chances."""
    return np.asarray(design.T @ (design * (chance * (1 - chance))[:, None]) + penalty)


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-values)), dtype=float)


def _loss(
    design: np.ndarray,
    target: np.ndarray,
    theta: np.ndarray,
    penalty: np.ndarray,
    centre: np.ndarray,
) -> float:
    log_odds = design @ theta
    likelihood = float(np.sum(target * log_odds - np.logaddexp(0.0, log_odds)))
    gap = theta - centre
    return -likelihood + 0.5 * float(gap @ penalty @ gap)
