"""Relevance rank accuracy (Arras et al. 2022): of the K highest-|relevance| pixels, K = the mask's
size, the share inside the mask; pixels tied at the K-th value fill the remaining places in
proportion. NaN for an empty mask.
"""

from __future__ import annotations

import numpy as np

from ferxai.assess._maps import with_masks


def relevance_rank(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    maps, masks = with_masks(maps, masks)
    flat = maps.reshape(len(maps), -1)
    truth = masks.reshape(len(masks), -1)
    k = truth.sum(axis=1)
    scores = np.full(len(maps), np.nan)
    for i in np.flatnonzero(k):
        values = flat[i]
        kth = np.partition(values, values.size - k[i])[values.size - k[i]]
        above = values > kth
        tied = values == kth
        fill = (k[i] - above.sum()) / tied.sum()
        scores[i] = ((above & truth[i]).sum() + fill * (tied & truth[i]).sum()) / k[i]
    return scores
