"""Pointing game (Zhang et al. 2018): whether the map's maximum lies on the mask.

The share of the map's maximal pixels that lie within `tolerance` pixels (Chebyshev distance) of
the mask, so a unique maximum scores 0 or 1 and a constant map scores the (dilated) mask's area
fraction instead of a free hit. NaN for an empty mask.
"""

from __future__ import annotations

import numpy as np

from ferxai.assess._maps import dilate, with_masks


def pointing_game(maps: np.ndarray, masks: np.ndarray, tolerance: int = 0) -> np.ndarray:
    maps, masks = with_masks(maps, masks)
    target = dilate(masks, tolerance)
    peak = maps == maps.reshape(len(maps), -1).max(axis=1)[:, None, None]
    score = (peak & target).sum(axis=(1, 2)) / peak.sum(axis=(1, 2))
    return np.where(masks.any(axis=(1, 2)), score, np.nan)
