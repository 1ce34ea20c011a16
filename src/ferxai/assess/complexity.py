"""Complexity: how concentrated a map is, per image, from its magnitudes (maps (N, H, W) -> (N,)).

* sparseness: the Gini index of |map| (Chalasani et al. 2020): 0 for a constant map, (n - 1) / n
  for a map with one non-zero pixel; higher is sparser;
* entropy: Shannon entropy (nats) of |map| normalised to sum 1 (Bhatt et al. 2020): 0 for one
  non-zero pixel, log(n) for a constant map; lower is more concentrated.
An all-zero map gives NaN for both.
"""

from __future__ import annotations

import numpy as np


def _magnitudes(maps: np.ndarray) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W), got {maps.shape}")
    return np.abs(maps.reshape(len(maps), -1))


def sparseness(maps: np.ndarray) -> np.ndarray:
    a = np.sort(_magnitudes(maps), axis=1)
    n = a.shape[1]
    weights = 2 * np.arange(1, n + 1) - n - 1
    total = a.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (a * weights).sum(axis=1) / (n * total), np.nan)


def entropy(maps: np.ndarray) -> np.ndarray:
    a = _magnitudes(maps)
    total = a.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = a / total
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.where(total[:, 0] > 0, terms.sum(axis=1), np.nan)


__all__ = ["entropy", "sparseness"]
