"""Relevance mass accuracy (Arras et al. 2022): |relevance| inside the mask over all |relevance|.

A map equal to the mask scores 1; independent random values about the mask's area fraction.
NaN for an empty mask or an all-zero map.
"""

from __future__ import annotations

import numpy as np

from ferxai.assess._maps import with_masks


def relevance_mass(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    maps, masks = with_masks(maps, masks)
    total = maps.sum(axis=(1, 2))
    inside = (maps * masks).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        score = inside / total
    return np.where(masks.any(axis=(1, 2)) & (total > 0), score, np.nan)
