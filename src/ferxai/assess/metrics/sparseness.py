"""Sparseness: the Gini index of |map| (Chalasani et al. 2020). 0 for a constant map, (n - 1) / n
for a map with one non-zero pixel; higher is sparser. NaN for an all-zero map."""

from __future__ import annotations

import numpy as np

from ferxai.assess._maps import magnitudes


def sparseness(maps: np.ndarray) -> np.ndarray:
    a = np.sort(magnitudes(maps), axis=1)
    n = a.shape[1]
    weights = 2 * np.arange(1, n + 1) - n - 1
    total = a.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (a * weights).sum(axis=1) / (n * total), np.nan)
