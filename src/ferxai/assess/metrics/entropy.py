"""Entropy: Shannon entropy (nats) of |map| normalised to sum 1 (Bhatt et al. 2020). 0 for one
non-zero pixel, log(n) for a constant map; lower is more concentrated. NaN for an all-zero map."""

from __future__ import annotations

import numpy as np

from ferxai.assess._maps import magnitudes


def entropy(maps: np.ndarray) -> np.ndarray:
    a = magnitudes(maps)
    total = a.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = a / total
        terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.where(total[:, 0] > 0, terms.sum(axis=1), np.nan)
