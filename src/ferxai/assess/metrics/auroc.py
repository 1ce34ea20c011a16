"""AUROC of |map| as a detector of mask pixels (Mann-Whitney U over pixels, ties counted half):
1 when every mask pixel outranks every other pixel, about 0.5 for a map unrelated to the mask.
NaN when the mask is empty or covers the whole image.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ferxai.assess._maps import with_masks


def auroc(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    maps, masks = with_masks(maps, masks)
    flat = maps.reshape(len(maps), -1)
    truth = masks.reshape(len(masks), -1)
    ranks = stats.rankdata(flat, axis=1)  # average ranks for ties
    positives = truth.sum(axis=1)
    negatives = truth.shape[1] - positives
    u = (ranks * truth).sum(axis=1) - positives * (positives + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        score = u / (positives * negatives)
    return np.where((positives > 0) & (negatives > 0), score, np.nan)
