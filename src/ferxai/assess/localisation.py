"""Localisation: how much of a map lies on the ground-truth mask, per image, batched.

Every function takes maps (N, H, W) and boolean masks (N, H, W) and returns one value per image
(N,), in [0, 1], higher is better. Maps are compared by magnitude (`np.abs`): a signed method's
strong negative evidence is still evidence about that region. A reference point for each: a map of
independent random values scores about the mask's share of the image on every metric except AUROC
(about 0.5); a map equal to the mask scores 1.

Conventions where the literature leaves a choice:
* pointing game (Zhang et al. 2018): the share of the map's maximal pixels that lie within
  `tolerance` pixels (Chebyshev distance) of the mask, so a unique maximum scores 0 or 1 and a
  constant map scores the (dilated) mask's area fraction instead of a free hit;
* relevance mass accuracy (Arras et al. 2022): relevance inside the mask over all relevance;
* relevance rank accuracy (Arras et al. 2022): of the K highest-ranked pixels, K = mask size, the
  share inside the mask (ties at the K-th value shared proportionally);
* AUROC: the map as a detector of mask pixels (Mann-Whitney U over pixels, ties counted half).
An image with an empty mask, or an all-zero map where relevance is divided by, gives NaN: it has
no answer, and means skip it (ferxai.assess.intervals).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, stats


def _check(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    maps = np.abs(np.asarray(maps, dtype=np.float64))
    masks = np.asarray(masks).astype(bool)
    if maps.ndim != 3 or maps.shape != masks.shape:
        raise ValueError(f"maps {maps.shape} and masks {masks.shape} must both be (N, H, W)")
    return maps, masks


def dilate(masks: np.ndarray, tolerance: int) -> np.ndarray:
    """Each mask grown by `tolerance` pixels in every direction (a square structuring element)."""
    if tolerance <= 0:
        return masks
    structure = np.zeros((1, 2 * tolerance + 1, 2 * tolerance + 1), dtype=bool)
    structure[0] = True
    return ndimage.binary_dilation(masks, structure=structure)


def pointing_game(maps: np.ndarray, masks: np.ndarray, tolerance: int = 0) -> np.ndarray:
    maps, masks = _check(maps, masks)
    target = dilate(masks, tolerance)
    peak = maps == maps.reshape(len(maps), -1).max(axis=1)[:, None, None]
    score = (peak & target).sum(axis=(1, 2)) / peak.sum(axis=(1, 2))
    return np.where(masks.any(axis=(1, 2)), score, np.nan)


def relevance_mass(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    maps, masks = _check(maps, masks)
    total = maps.sum(axis=(1, 2))
    inside = (maps * masks).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        score = inside / total
    return np.where(masks.any(axis=(1, 2)) & (total > 0), score, np.nan)


def relevance_rank(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    maps, masks = _check(maps, masks)
    flat = maps.reshape(len(maps), -1)
    truth = masks.reshape(len(masks), -1)
    k = truth.sum(axis=1)
    scores = np.full(len(maps), np.nan)
    for i in np.flatnonzero(k):
        values = flat[i]
        kth = np.partition(values, values.size - k[i])[values.size - k[i]]
        above = values > kth
        tied = values == kth
        # the pixels tied at the K-th value fill the remaining places in proportion
        fill = (k[i] - above.sum()) / tied.sum()
        scores[i] = ((above & truth[i]).sum() + fill * (tied & truth[i]).sum()) / k[i]
    return scores


def auroc(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    maps, masks = _check(maps, masks)
    flat = maps.reshape(len(maps), -1)
    truth = masks.reshape(len(masks), -1)
    ranks = stats.rankdata(flat, axis=1)  # average ranks for ties
    positives = truth.sum(axis=1)
    negatives = truth.shape[1] - positives
    u = (ranks * truth).sum(axis=1) - positives * (positives + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        score = u / (positives * negatives)
    return np.where((positives > 0) & (negatives > 0), score, np.nan)


__all__ = ["auroc", "dilate", "pointing_game", "relevance_mass", "relevance_rank"]
