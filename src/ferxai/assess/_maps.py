"""Shared checks of the map-only metrics: magnitudes, masks, dilation.

Maps are compared by magnitude (`np.abs`): a signed method's strong negative evidence is still
evidence about that region.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def magnitudes(maps: np.ndarray) -> np.ndarray:
    """|maps| as float64 (N, H*W)."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W), got {maps.shape}")
    return np.abs(maps.reshape(len(maps), -1))


def with_masks(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(|maps| float64, masks bool), both (N, H, W), or an error naming both shapes."""
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
