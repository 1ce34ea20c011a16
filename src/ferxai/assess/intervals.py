"""Means over images with percentile bootstrap intervals, and which methods they cannot separate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    mean: float
    low: float
    high: float
    n: int  # images with a value (NaN: the metric has no answer for that image)


def bootstrap_mean(values: np.ndarray, *, resamples: int = 1000, level: float = 0.95, seed: int = 0) -> Estimate:
    """Mean of the finite values and its percentile bootstrap interval (resampling images)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Estimate(float(values.mean()), float(low), float(high), int(values.size))


def separated(a: Estimate, b: Estimate) -> bool:
    """True when the two intervals do not overlap (the leaderboard's test for a real difference)."""
    return a.high < b.low or b.high < a.low


__all__ = ["Estimate", "bootstrap_mean", "separated"]
